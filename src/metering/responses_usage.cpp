#include "metering/responses_usage.hpp"

#include <algorithm>

namespace turnout::metering {
namespace {

std::optional<std::uint64_t> count_member(simdjson::dom::element object, std::string_view key) {
  auto value = object[key];
  if (value.error() || !value.value_unsafe().is_uint64()) return std::nullopt;
  return value.value_unsafe().get_uint64().value_unsafe();
}

}  // namespace

std::optional<pricing::Usage> read_responses_usage(simdjson::dom::element usage) {
  if (!usage.is_object()) return std::nullopt;
  const auto input = count_member(usage, "input_tokens");
  const auto output = count_member(usage, "output_tokens");
  if (!input || !output) return std::nullopt;
  pricing::Usage u;
  u.prompt_tokens = *input;
  u.completion_tokens = *output;  // reasoning tokens included: billed as output
  if (auto details = usage["input_tokens_details"]; !details.error() && details.value_unsafe().is_object())
    u.cached_tokens = std::min(count_member(details.value_unsafe(), "cached_tokens").value_or(0), *input);
  return u;
}

std::optional<MeteredUsage> meter_response(simdjson::dom::element root, tokenizer::EncodingId encoding,
                                           std::uint64_t prompt_tokens) {
  if (!root.is_object()) return std::nullopt;
  if (auto output = root["output"]; output.error() || !output.value_unsafe().is_array()) return std::nullopt;
  MeteredUsage metered;
  if (auto usage = root["usage"]; !usage.error()) {
    if (auto reported = read_responses_usage(usage.value_unsafe())) {
      metered.usage = *reported;
      metered.reported = true;
      return metered;
    }
  }
  const auto& enc = tokenizer::Encoding::get(encoding);
  metered.usage.prompt_tokens = prompt_tokens;
  for_each_response_output_text(root, [&](std::string_view text) { metered.usage.completion_tokens += enc.count(text); });
  return metered;
}

}  // namespace turnout::metering
