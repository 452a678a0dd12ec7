#pragma once
// Meter stage, part one: what a call used. Usage comes from the upstream's report when it
// gives one, else from the gateway's own count of what the model produced (content and
// tool-call arguments, in the served model's encoding). One traversal of the
// choices -> message/delta -> content/tool_calls shape serves buffered and streamed calls.
#include "pricing/pricing.hpp"
#include "tokenizer/streaming_count.hpp"
#include "tokenizer/tokenizer.hpp"

#include <simdjson.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::metering {

// The gateway's prompt count in the served model's encoding, taken when first asked: only
// an answer without usage needs it, and the plan may not have taken it (call_plan.hpp).
using PromptCount = std::function<std::uint64_t()>;

struct MeteredUsage {
  pricing::Usage usage;
  bool reported = false;  // true: the upstream's numbers; false: the gateway's count
};

// usage {prompt_tokens, completion_tokens, prompt_tokens_details.cached_tokens}; nullopt
// when the two counts are not both there. Cached tokens never exceed the prompt's.
std::optional<pricing::Usage> read_usage(simdjson::dom::element usage);

// Calls `sink(text)` for every piece of generated text in a chat object: for each choice,
// `<member>.content` and each `<member>.tool_calls[].function.arguments`, where member is
// "message" (a chat.completion) or "delta" (a chat.completion.chunk).
template <class Sink>
void for_each_generated_text(simdjson::dom::element root, std::string_view member, Sink&& sink);

// A buffered chat.completion: the reported usage, else the gateway's count (`prompt_tokens`
// is its prompt count). nullopt when the body is not a chat completion (no choices array).
std::optional<MeteredUsage> meter_completion(simdjson::dom::element root, tokenizer::EncodingId encoding,
                                             const PromptCount& prompt_tokens);

// A streamed call, fed one parsed event at a time. What the model produced is counted as
// it arrives (in the served model's encoding), never kept whole: memory per stream stays
// small however long the stream runs.
class StreamUsage {
 public:
  explicit StreamUsage(tokenizer::EncodingId encoding) : produced_(encoding) {}
  // Records the event's deltas and, when it carries one, the reported usage.
  void observe(simdjson::dom::element event);
  const std::optional<pricing::Usage>& reported() const { return reported_; }
  // The usage to bill once the stream is over.
  MeteredUsage finish(const PromptCount& prompt_tokens) const;

 private:
  std::optional<pricing::Usage> reported_;
  tokenizer::StreamingCount produced_;  // streamed content and tool-call arguments
};

template <class Sink>
void for_each_generated_text(simdjson::dom::element root, std::string_view member, Sink&& sink) {
  auto choices = root["choices"];
  if (choices.error() || !choices.value_unsafe().is_array()) return;
  const simdjson::dom::array choice_array = choices.value_unsafe().get_array().value_unsafe();
  for (auto choice : choice_array) {
    auto message = choice[member];
    if (message.error() || !message.value_unsafe().is_object()) continue;
    if (auto content = message.value_unsafe()["content"]; !content.error() && content.value_unsafe().is_string())
      sink(content.value_unsafe().get_string().value_unsafe());
    if (auto calls = message.value_unsafe()["tool_calls"]; !calls.error() && calls.value_unsafe().is_array()) {
      const simdjson::dom::array call_array = calls.value_unsafe().get_array().value_unsafe();
      for (auto call : call_array) {
        auto args = call["function"]["arguments"];
        if (!args.error() && args.value_unsafe().is_string()) sink(args.value_unsafe().get_string().value_unsafe());
      }
    }
  }
}

}  // namespace turnout::metering
