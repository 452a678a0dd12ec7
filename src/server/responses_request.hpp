#pragma once
// Parse stage of POST /v1/responses (and /v1/responses/input_tokens): the body validated
// into the chat-count view of its prompt — `instructions` as a system message, `input` as
// messages (text, images, files), function calls (assistant tool calls) and their outputs
// (tool messages), `tools[]` of type function as tool definitions. Views point into the
// parser's buffers, so a ResponsesRequest lives no longer than its parser.
#include "server/chat_request.hpp"
#include "server/prompt_buffers.hpp"
#include "server/tool_definitions.hpp"
#include "tokenizer/chat_count.hpp"

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace turnout::server {

struct ResponsesRequest {
  std::optional<std::string_view> model;  // absent or null: route
  bool stream = false;
  std::uint64_t requested_output_tokens = 0;  // max_output_tokens, else 0
  // previous_response_id / conversation: earlier turns live at the provider, so the
  // gateway's count covers only what this body holds.
  bool continuation = false;
  // Something in the body has no published count formula (files, item references,
  // reasoning items, non-function tools): the count is the nearest documented estimate.
  bool count_estimated = false;
  tokenizer::ChatPromptView prompt;
};

// One per event-loop thread, reused for every request on it.
class ResponsesRequestParser {
 public:
  std::variant<const ResponsesRequest*, RequestError> parse(std::string_view body);

 private:
  bool read_input(simdjson::dom::element input, RequestError& error);
  bool read_message(simdjson::dom::element item, const std::string& at, RequestError& error);
  bool read_tools(simdjson::dom::element tools, RequestError& error);

  struct Range {
    std::size_t begin, end;
  };
  JsonBodyReader body_reader_;
  ResponsesRequest request_;
  std::vector<Range> part_ranges_, call_ranges_;  // per message
  PromptBuffers prompt_;
};

}  // namespace turnout::server
