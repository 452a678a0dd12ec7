#pragma once
// Parse stage: a chat-completions request body, validated once into a view the later
// stages read (token counting, routing, forwarding). Strings are views into the parser's
// buffers, so a ChatRequest lives no longer than the RequestParser that produced it.
#include "common/json_text.hpp"
#include "server/json_rewrite.hpp"
#include "server/prompt_buffers.hpp"
#include "server/request_json.hpp"
#include "server/tool_definitions.hpp"
#include "tokenizer/chat_count.hpp"

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <variant>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::server {

using turnout::append_json_string;
using turnout::replace_lone_surrogate_escapes;

struct ChatRequest {
  std::optional<std::string_view> model;  // absent or null: route
  bool stream = false;
  bool include_usage = false;              // stream_options.include_usage as the client asked
  std::uint64_t requested_output_tokens = 0;  // max_completion_tokens, else max_tokens, else 0
  std::uint64_t choices = 1;               // n (1 to 128)
  tokenizer::ChatPromptView prompt;        // spans into the parser-owned vectors below
};

// Owns the simdjson parser and the storage behind ChatRequest views; one per event-loop
// thread, reused for every request on it (no per-request allocation once warm).
class RequestParser {
 public:
  // Parses and validates `body`. On success the returned views stay valid until the next
  // call. Lone UTF-16 surrogates in \u escapes are read as U+FFFD (as tiktoken does);
  // invalid UTF-8 bytes are a 400.
  std::variant<const ChatRequest*, RequestError> parse(std::string_view body);

 private:
  bool validate_messages(simdjson::dom::array messages, RequestError& error);
  bool validate_tools(simdjson::dom::element tools, RequestError& error);

  JsonBodyReader body_reader_;
  ChatRequest request_;
  PromptBuffers prompt_;
};

}  // namespace turnout::server
