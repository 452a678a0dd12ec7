#include "metering/embeddings_usage.hpp"

namespace turnout::metering {

std::optional<MeteredUsage> meter_embeddings(simdjson::dom::element root, std::uint64_t counted_tokens) {
  if (!root.is_object()) return std::nullopt;
  if (auto data = root["data"]; data.error() || !data.value_unsafe().is_array()) return std::nullopt;
  MeteredUsage metered;
  if (auto prompt = root["usage"]["prompt_tokens"]; !prompt.error() && prompt.value_unsafe().is_uint64()) {
    metered.usage.prompt_tokens = prompt.value_unsafe().get_uint64().value_unsafe();
    metered.reported = true;
  } else {
    metered.usage.prompt_tokens = counted_tokens;
  }
  return metered;
}

}  // namespace turnout::metering
