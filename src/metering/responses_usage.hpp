#pragma once
// Meter stage for the Responses API: usage {input_tokens, input_tokens_details.
// cached_tokens, output_tokens, output_tokens_details.reasoning_tokens}. Reasoning tokens
// are part of output_tokens and billed as output; nothing is added for them.
#include "metering/usage.hpp"
#include "tokenizer/tokenizer.hpp"

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace turnout::metering {

// A Responses usage object; nullopt unless both input_tokens and output_tokens are there.
// Cached tokens never exceed the input's.
std::optional<pricing::Usage> read_responses_usage(simdjson::dom::element usage);

// Calls `sink(text)` for each piece of generated text in a response's `output`: the
// `output_text` parts of messages and the `arguments` of function calls.
template <class Sink>
void for_each_response_output_text(simdjson::dom::element response, Sink&& sink);

// A buffered response object: its usage, else the gateway's count (`prompt_tokens` and
// the output text in `encoding`). nullopt when the body is not a response (no output array).
std::optional<MeteredUsage> meter_response(simdjson::dom::element root, tokenizer::EncodingId encoding,
                                           std::uint64_t prompt_tokens);

template <class Sink>
void for_each_response_output_text(simdjson::dom::element response, Sink&& sink) {
  auto output = response["output"];
  if (output.error() || !output.value_unsafe().is_array()) return;
  const simdjson::dom::array items = output.value_unsafe().get_array().value_unsafe();
  for (auto item : items) {
    if (auto arguments = item["arguments"]; !arguments.error() && arguments.value_unsafe().is_string())
      sink(arguments.value_unsafe().get_string().value_unsafe());
    auto content = item["content"];
    if (content.error() || !content.value_unsafe().is_array()) continue;
    const simdjson::dom::array parts = content.value_unsafe().get_array().value_unsafe();
    for (auto part : parts) {
      if (auto text = part["text"]; !text.error() && text.value_unsafe().is_string())
        sink(text.value_unsafe().get_string().value_unsafe());
    }
  }
}

}  // namespace turnout::metering
