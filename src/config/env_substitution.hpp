#pragma once
// `${VAR}` / `${VAR:-default}` substitution for configuration strings
// (docs/REFERENCE.md §3.1 Files, layering and errors).
#include "common/result.hpp"
#include "config/config.hpp"

#include <string>
#include <string_view>

namespace turnout::config {

struct SubstitutedText {
  std::string text;
  bool used_environment = false;  // some part came from the environment: never echo it
};

// Replaces every `${NAME}` with the variable's value and every `${NAME:-default}` with
// the value, or with `default` when the variable is unset or empty (shell semantics).
// A `$` not followed by `{` is literal. Errors (unset variable without a default,
// malformed reference) name the variable, never a value.
Result<SubstitutedText> substitute_env(std::string_view text, const EnvLookup& env);

}  // namespace turnout::config
