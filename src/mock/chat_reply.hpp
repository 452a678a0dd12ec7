#pragma once
// The mock's answers: deterministic content derived from the request, a realistic
// chat.completion object, the same answer as SSE chunk events, and OpenAI error bodies.
// Pure functions of their inputs, so tests can derive expectations from them.
#include "mock/chat_call.hpp"
#include "mock/mock_settings.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::mock {

struct GeneratedToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text
};

struct GeneratedChoice {
  std::string content;  // empty when the choice is a tool call
  std::optional<GeneratedToolCall> tool_call;
  std::string_view finish_reason;  // "stop", "length" or "tool_calls"
};

struct Usage {
  std::uint64_t prompt_tokens = 0;
  std::uint64_t completion_tokens = 0;
  std::uint64_t cached_tokens = 0;
};

struct GeneratedCompletion {
  std::string id;  // "chatcmpl-mock-<sequence>"
  std::int64_t created = 0;
  std::string model;
  std::vector<GeneratedChoice> choices;
  Usage usage;
};

// Identity of one answer: a sequence number unique in the process and the unix time.
struct AnswerStamp {
  std::uint64_t sequence = 0;
  std::int64_t created = 0;
};

// The answer text for choice `index`: "Mock answer to: <first 40 characters of the last
// user message>", padded with filler words to `completion_words` words.
std::string answer_text(const ChatCall& call, std::uint32_t index, std::uint32_t completion_words);

// Small JSON arguments fitting a function's parameter schema: each property gets its
// first enum value or a placeholder of its type.
std::string arguments_for_schema(const boost::json::value* schema);

// Builds the whole answer. Completion tokens are the real count of the content and tool
// arguments with the model's encoding; content longer than max_output_tokens is cut there
// (finish_reason "length").
GeneratedCompletion generate_completion(const ChatCall& call, const ReplySettings& reply,
                                        AnswerStamp stamp, std::uint64_t prompt_tokens);

// The non-streaming body (chat.completion object).
std::string completion_json(const GeneratedCompletion& completion);
// The first half of that body: what a connection cut mid-body would deliver.
std::string truncated_completion_json(const GeneratedCompletion& completion);

// One SSE event ("data: ...\n\n"). Paced events wait chunk_delay_ms before being sent.
struct StreamEvent {
  std::string text;
  bool paced = false;
};

struct StreamShape {
  std::uint32_t chunks = 8;
  bool include_usage = false;    // final usage chunk (and "usage": null on the others)
  bool malformed_event = false;  // an invalid JSON event after the first content chunk
};

// Every event of the streamed answer, `data: [DONE]` included. Per choice: a role chunk,
// `chunks` content (or tool-argument) fragments, a finish chunk; then the usage chunk.
std::vector<StreamEvent> stream_events(const GeneratedCompletion& completion, const StreamShape& shape);

// Splits `text` into `parts` pieces of similar length at word boundaries (character
// boundaries when there are fewer words than parts; fewer pieces if it is shorter still).
std::vector<std::string_view> split_for_stream(std::string_view text, std::uint32_t parts);

// OpenAI's error body: {"error":{"message","type","param","code"}}.
std::string error_json(std::string_view message, std::string_view type, std::string_view param = {},
                       std::string_view code = {});
// The error body a provider sends with `status` (429 rate limit, 5xx server errors...).
std::string simulated_error_json(unsigned status);
// An HTML error page as a proxy in front of a provider would send it.
std::string html_error_page(unsigned status);

}  // namespace turnout::mock
