// Fuzz target for the YAML config reader: parse_config on arbitrary text (layered over the
// built-in defaults, with a fixed environment) returns a Config or an error naming the
// problem, never crashes or trips a sanitizer.
#include "config/config.hpp"

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  const turnout::config::EnvLookup env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "OPENAI_API_KEY") return std::string("sk-fuzz");
    return std::nullopt;
  };
  auto config = turnout::config::parse_config(yaml, "fuzz.yaml", env);
  if (!config && config.error().message.empty()) std::abort();  // an error always says what
  return 0;
}
