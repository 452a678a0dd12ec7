#pragma once
// Typed, error-collecting access to one YAML configuration document. Every read names its
// key path; every problem becomes one message "<source>:<line>:<col>: <path>: <problem>",
// and reading continues so that one start-up reports every mistake at once.
#include "config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::config {

std::string child_path(std::string_view parent, std::string_view key);  // "routing" + "tiers"
std::string index_path(std::string_view list, std::size_t index);       // "routing.tiers[1]"

class DocumentReader {
 public:
  // `from_file`: the document is the user's file (marks are worth quoting); false for the
  // built-in defaults.
  DocumentReader(std::string source, const EnvLookup& env, bool from_file);

  // Parses the YAML text; nullopt (and an error) when it is not well-formed YAML.
  std::optional<YAML::Node> load(std::string_view yaml_text);

  // Records a problem at `node` (for its line and column) under `path`.
  void fail(const YAML::Node& node, std::string_view path, std::string_view problem);
  // Records a problem about a value read earlier from `path`; without such a read (the
  // value is a built-in default) the message says so.
  void fail(std::string_view path, std::string_view problem);

  // A map node (null counts as an empty map) whose keys are all in `known`.
  bool expect_map(const YAML::Node& node, std::string_view path);
  void reject_unknown_keys(const YAML::Node& map, std::string_view path,
                           std::initializer_list<std::string_view> known);
  // A list node (null counts as an empty list).
  bool expect_list(const YAML::Node& node, std::string_view path);
  // The text of a map key (keys must be plain scalars).
  std::optional<std::string> key_text(const YAML::Node& key, std::string_view path);

  // Scalars. Each substitutes ${VAR}, records the value's position for later messages and
  // returns nullopt after recording an error.
  std::optional<std::string> string(const YAML::Node& node, std::string_view path);
  std::optional<std::string> non_empty_string(const YAML::Node& node, std::string_view path);
  std::optional<std::uint64_t> integer(const YAML::Node& node, std::string_view path, std::uint64_t min,
                                       std::uint64_t max);
  std::optional<double> seconds(const YAML::Node& node, std::string_view path, bool zero_allowed);
  std::optional<bool> boolean(const YAML::Node& node, std::string_view path);
  // A number from 0 to 1 inclusive (a ratio).
  std::optional<double> fraction(const YAML::Node& node, std::string_view path);
  std::optional<std::int64_t> price(const YAML::Node& node, std::string_view path);
  // One of `allowed` (e.g. openai | azure).
  std::optional<std::string> choice(const YAML::Node& node, std::string_view path,
                                    std::initializer_list<std::string_view> allowed);

  // `value` in backquotes for a message about `path`, or "the value" when it came from the
  // environment or is a secret.
  std::string quoted(std::string_view path, std::string_view value) const;

  // Whether this document gave the value at `path` (false: it is a built-in default).
  bool gave(std::string_view path) const { return values_read_.contains(path); }

  bool ok() const { return errors_.empty(); }
  // All messages, one per line.
  std::string error_text() const;

 private:
  struct Scalar {
    std::string text;
    bool echo_allowed = true;  // false for secrets and anything taken from the environment
  };
  std::optional<Scalar> scalar(const YAML::Node& node, std::string_view path, std::string_view expected);
  std::string got(const Scalar& value) const;  // " (got "x")" when the value may be shown

  std::string source_;
  const EnvLookup& env_;
  bool from_file_;
  struct ValueRead {
    YAML::Mark mark;
    bool echo_allowed = true;
  };
  std::map<std::string, ValueRead, std::less<>> values_read_;
  std::vector<std::string> errors_;
};

}  // namespace turnout::config
