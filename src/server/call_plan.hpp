#pragma once
// Parse -> count -> route: turns a chat request body into a routing decision. Shared by
// the gateway (POST /v1/chat/completions, POST /route) and `turnout route`.
#include "config/config.hpp"
#include "routing/router.hpp"
#include "server/chat_request.hpp"
#include "server/openai_error.hpp"
#include "tracing/call_trace.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace turnout::server {

// The provider operation a plan calls (appended to the provider's base_url).
inline constexpr std::string_view kChatOperation = "/chat/completions";
inline constexpr std::string_view kEmbeddingsOperation = "/embeddings";
inline constexpr std::string_view kResponsesOperation = "/responses";

struct CallPlan {
  std::string requested_model;  // "" when absent or null
  std::string_view operation = kChatOperation;
  routing::Decision decision;
  bool stream = false;
  bool include_usage = false;
  std::uint64_t requested_output_tokens = 0;  // max_completion_tokens, else max_tokens, else 0
  std::uint64_t choices = 1;                  // n
  // Responses: part of the prompt has no published formula (the count is an estimate), or
  // lives at the provider (previous_response_id / conversation: the count is partial).
  bool count_estimated = false;
  bool count_partial = false;
  // The options the prompt was counted with, for a count taken later (count_served_chat_prompt).
  tokenizer::ChatCountOptions count_options;
};

// A prompt in the chat-count view, whatever endpoint it came from (chat, responses).
struct PromptToRoute {
  std::optional<std::string_view> model;  // absent: route
  std::uint64_t requested_output_tokens = 0;
  tokenizer::ChatPromptView prompt;
  std::string_view prompt_param;        // named by context_length_exceeded ("messages", "input")
  std::string_view output_limit_param;  // named when the output limit is too large
  // Every candidate gets its own model's count (POST /route, input_tokens, a budget hold,
  // the Responses endpoint). Without it, a candidate whose context fit the byte bound
  // proves is left uncounted (routing::Candidate::prompt_tokens); the routing count is
  // always taken.
  bool count_every_model = true;
};

// Count -> route for a prompt: the decision, or the error for the client.
// With `trace`, each count is a span under `parent_span`.
std::variant<CallPlan, ApiError> plan_prompt(const config::Config& config, const PromptToRoute& prompt,
                                             tracing::CallTrace* trace = nullptr,
                                             std::size_t parent_span = tracing::CallTrace::kNone);

// Everything the plan needs from the request is copied out of the parser's views, so the
// plan stays valid after the parser is reused.
// With `trace`, each count is a span under `parent_span`.
// `count_every_model`: as PromptToRoute's.
std::variant<CallPlan, ApiError> plan_call(const config::Config& config, RequestParser& parser,
                                           std::string_view body, tracing::CallTrace* trace = nullptr,
                                           std::size_t parent_span = tracing::CallTrace::kNone,
                                           bool count_every_model = true);

// The chat prompt of `body` (the body plan_call planned) counted in `encoding`, with the
// plan's count options: for a count the plan left out and a later step needs (the billing
// fallback of an answer without usage). Parses `body` again with `parser`, since the
// parser's views of the first parse are gone by then; nullopt if it no longer parses.
std::optional<std::uint64_t> count_chat_prompt_again(RequestParser& parser, std::string_view body,
                                                     const CallPlan& plan, tokenizer::EncodingId encoding);

// The POST /route body (docs/REFERENCE.md §2.5): {"model","route","prompt_tokens",
// "encoding",["model_prompt_tokens","model_encoding",]"context_window",
// "estimated_input_cost_usd"}.
std::string route_json(const CallPlan& plan);

}  // namespace turnout::server
