#include "config/env_substitution.hpp"

#include <algorithm>

namespace turnout::config {
namespace {

bool is_name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

bool is_valid_name(std::string_view name) {
  return !name.empty() && is_name_start(name.front()) && std::all_of(name.begin(), name.end(), is_name_char);
}

}  // namespace

Result<SubstitutedText> substitute_env(std::string_view text, const EnvLookup& env) {
  SubstitutedText result;
  result.text.reserve(text.size());
  std::size_t position = 0;
  while (position < text.size()) {
    const std::size_t start = text.find("${", position);
    if (start == std::string_view::npos) break;
    result.text.append(text.substr(position, start - position));

    const std::size_t end = text.find('}', start + 2);
    if (end == std::string_view::npos) {
      return make_error("unterminated `${`: write ${NAME} or ${NAME:-default}");
    }
    const std::string_view reference = text.substr(start + 2, end - start - 2);
    const std::size_t default_marker = reference.find(":-");
    const std::string_view name = reference.substr(0, default_marker);
    if (!is_valid_name(name)) {
      return make_error("`${" + std::string(reference) +
                        "}` is not a valid reference: write ${NAME} or ${NAME:-default}, NAME made of "
                        "letters, digits and _");
    }

    const std::optional<std::string> value = env(name);
    if (default_marker != std::string_view::npos && (!value || value->empty())) {
      result.text.append(reference.substr(default_marker + 2));
    } else if (value) {
      result.text.append(*value);
      result.used_environment = true;
    } else {
      return make_error("environment variable " + std::string(name) + " is not set (write ${" +
                        std::string(name) + ":-default} to make it optional)");
    }
    position = end + 1;
  }
  if (position < text.size()) result.text.append(text.substr(position));
  return result;
}

}  // namespace turnout::config
