#pragma once
// Parse -> count -> route for POST /v1/responses and its dry-run twin
// POST /v1/responses/input_tokens. The prompt (instructions, input items, function tools)
// is counted with the chat formula on its chat equivalent (responses_request.hpp) and
// routed by the same tiers, aliases and context fit as a chat call.
//
// A continuation (previous_response_id, conversation) builds on turns stored at a
// provider, which the gateway neither sees nor knows: it is routed on what the body holds
// (the count is partial), and only to models of the default provider — the provider
// GET /v1/responses/{id} goes to — with fallbacks of other providers dropped.
#include "config/config.hpp"
#include "server/call_plan.hpp"
#include "server/openai_error.hpp"
#include "server/responses_request.hpp"

#include <string>
#include <string_view>
#include <variant>

namespace turnout::server {

// With `trace`, each count is a span under `parent_span`.
std::variant<CallPlan, ApiError> plan_responses_call(const config::Config& config, ResponsesRequestParser& parser,
                                                     std::string_view body, tracing::CallTrace* trace = nullptr,
                                                     std::size_t parent_span = tracing::CallTrace::kNone);

// The POST /v1/responses/input_tokens body: {"object":"response.input_tokens",
// "input_tokens", "count_estimated", "count_partial", "model"}.
std::string input_tokens_json(const CallPlan& plan);

}  // namespace turnout::server
