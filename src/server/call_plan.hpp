#pragma once
// Parse -> count -> route: turns a chat request body into a routing decision. Shared by
// the gateway (POST /v1/chat/completions, POST /route) and `turnout route`.
#include "config/config.hpp"
#include "routing/router.hpp"
#include "server/chat_request.hpp"
#include "server/openai_error.hpp"
#include "tracing/call_trace.hpp"

#include <string>
#include <string_view>
#include <variant>

namespace turnout::server {

struct CallPlan {
  std::string requested_model;  // "" when absent or null
  routing::Decision decision;
  bool stream = false;
  bool include_usage = false;
  std::uint64_t requested_output_tokens = 0;  // max_completion_tokens, else max_tokens, else 0
  std::uint64_t choices = 1;                  // n
};

// Everything the plan needs from the request is copied out of the parser's views, so the
// plan stays valid after the parser is reused.
// With `trace`, each count is a span under `parent_span`.
std::variant<CallPlan, ApiError> plan_call(const config::Config& config, RequestParser& parser,
                                           std::string_view body, tracing::CallTrace* trace = nullptr,
                                           std::size_t parent_span = tracing::CallTrace::kNone);

// The POST /route body (docs/REFERENCE.md §2.5): {"model","route","prompt_tokens",
// "encoding",["model_prompt_tokens","model_encoding",]"context_window",
// "estimated_input_cost_usd"}.
std::string route_json(const CallPlan& plan);

}  // namespace turnout::server
