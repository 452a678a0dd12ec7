#pragma once
// A chat-completions request as the mock upstream reads it: just the fields that shape
// its answer, validated minimally (the mock is not the gateway's validator). Views point
// into the parsed JSON document, which the caller keeps alive and in place.
#include "common/result.hpp"

#include <boost/json/fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::mock {

// A client error in OpenAI's terms: a message and the parameter at fault ("" if none).
struct InvalidRequest {
  std::string message;
  std::string param;
};
[[noreturn]] void throw_exception_from_error(const InvalidRequest& e, const boost::source_location& loc);

// The function the answer calls, when the request offers tools and allows a call.
struct ToolTarget {
  std::string_view name;
  const boost::json::value* parameters = nullptr;  // its JSON schema, if given
};

struct ChatCall {
  std::string_view model;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::uint32_t n = 1;
  std::string_view last_user_text;  // text of the last user message (first text part)
  std::optional<ToolTarget> tool;
  std::optional<std::uint64_t> max_output_tokens;  // max_completion_tokens, else max_tokens
  // response_format: json_object asks for a JSON answer; json_schema for one fitting `schema`.
  bool json_answer = false;
  const boost::json::value* answer_schema = nullptr;
};

// Parses a request body. Lone UTF-16 surrogate escapes (which OpenAI accepts) are read as
// U+FFFD instead of failing the parse.
Result<boost::json::value, InvalidRequest> parse_json_body(std::string_view body);

// Reads the fields of `root`. `default_model` is used when the body has no model (Azure
// deployments name the model in the URL).
Result<ChatCall, InvalidRequest> read_chat_call(const boost::json::value& root,
                                                std::string_view default_model);

// OpenAI's billing count for the request's prompt, by the real tokenizer with the
// encoding OpenAI uses for `model`.
std::uint64_t count_prompt_tokens(const boost::json::value& root, std::string_view model);

}  // namespace turnout::mock
