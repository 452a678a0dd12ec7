#pragma once
// Parse stage: a chat-completions request body, validated once into a view the later
// stages read (token counting, routing, forwarding). Strings are views into the parser's
// buffers, so a ChatRequest lives no longer than the RequestParser that produced it.
#include "common/json_text.hpp"
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

// A client error in OpenAI's terms: message, and the offending parameter ("" when none).
struct RequestError {
  std::string message;
  std::string param;
  std::string code;  // optional OpenAI code, e.g. "invalid_utf8"
};

// "Invalid type for '<param>': expected <expected>, but got <e's type>." (code invalid_type).
RequestError type_error(std::string param, const char* expected, simdjson::dom::element e);

// Parses a request body that must be a JSON object. Lone UTF-16 surrogate escapes are read
// as U+FFFD (as tiktoken does; the body is then repaired into `repaired`, which must
// outlive the element); invalid UTF-8 and invalid JSON are errors naming the problem.
std::variant<simdjson::dom::element, RequestError> parse_json_body(simdjson::dom::parser& parser,
                                                                   std::string& repaired, std::string_view body);

struct ChatRequest {
  std::optional<std::string_view> model;  // absent or null: route
  bool stream = false;
  bool include_usage = false;              // stream_options.include_usage as the client asked
  std::uint64_t requested_output_tokens = 0;  // max_completion_tokens, else max_tokens, else 0
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

  simdjson::dom::parser parser_;
  std::string repaired_;  // body copy with lone surrogate escapes replaced, when needed
  ChatRequest request_;
  std::vector<tokenizer::MessageView> messages_;
  std::vector<tokenizer::ContentPartView> parts_;
  std::vector<tokenizer::ToolCallView> tool_calls_;
  ToolDefinitions tool_definitions_;
  std::vector<std::string_view> top_level_keys_;  // scratch for the duplicate-key check
};

// Rewrites the top-level members of a valid JSON object: drops every member whose
// (unescaped) key is in `drop`, then appends `extra` (already-serialised `"k":v` pairs,
// comma-separated). Every other member is copied byte for byte, its first copy only: a
// second copy of a key (however escaped) is never forwarded, whatever the caller checked.
std::string rewrite_top_level(std::string_view json, std::initializer_list<std::string_view> drop,
                              std::string_view extra);

}  // namespace turnout::server
