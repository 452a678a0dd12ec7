#include "metering/usage.hpp"

#include <algorithm>

namespace turnout::metering {

std::optional<pricing::Usage> read_usage(simdjson::dom::element usage) {
  auto get = [](simdjson::dom::element obj, std::string_view key) -> std::optional<std::uint64_t> {
    auto v = obj[key];
    if (v.error() || !v.value_unsafe().is_uint64()) return std::nullopt;
    return v.value_unsafe().get_uint64().value_unsafe();
  };
  auto prompt = get(usage, "prompt_tokens");
  auto completion = get(usage, "completion_tokens");
  if (!prompt || !completion) return std::nullopt;
  pricing::Usage u;
  u.prompt_tokens = *prompt;
  u.completion_tokens = *completion;
  if (auto details = usage["prompt_tokens_details"]; !details.error() && details.value_unsafe().is_object())
    u.cached_tokens = std::min(get(details.value_unsafe(), "cached_tokens").value_or(0), *prompt);
  return u;
}

std::optional<MeteredUsage> meter_completion(simdjson::dom::element root, tokenizer::EncodingId encoding,
                                             const PromptCount& prompt_tokens) {
  if (!root.is_object()) return std::nullopt;
  auto choices = root["choices"];
  if (choices.error() || !choices.value_unsafe().is_array()) return std::nullopt;
  MeteredUsage m;
  if (auto usage = root["usage"]; !usage.error() && usage.value_unsafe().is_object()) {
    if (auto reported = read_usage(usage.value_unsafe())) {
      m.usage = *reported;
      m.reported = true;
      return m;
    }
  }
  const auto& enc = tokenizer::Encoding::get(encoding);
  m.usage.prompt_tokens = prompt_tokens();
  for_each_generated_text(root, "message", [&](std::string_view text) { m.usage.completion_tokens += enc.count(text); });
  return m;
}

void StreamUsage::observe(simdjson::dom::element event) {
  for_each_generated_text(event, "delta", [&](std::string_view text) { produced_.append(text); });
  if (auto usage = event["usage"]; !usage.error() && usage.value_unsafe().is_object()) {
    if (auto u = read_usage(usage.value_unsafe())) reported_ = *u;
  }
}

MeteredUsage StreamUsage::finish(const PromptCount& prompt_tokens) const {
  if (reported_) return MeteredUsage{*reported_, true};
  MeteredUsage m;
  m.usage.prompt_tokens = prompt_tokens();
  m.usage.completion_tokens = produced_.total();
  return m;
}

}  // namespace turnout::metering
