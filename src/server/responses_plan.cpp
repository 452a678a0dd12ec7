#include "server/responses_plan.hpp"

#include "common/json_text.hpp"

#include <algorithm>

namespace turnout::server {

std::variant<CallPlan, ApiError> plan_responses_call(const config::Config& config, ResponsesRequestParser& parser,
                                                     std::string_view body, tracing::CallTrace* trace,
                                                     std::size_t parent_span) {
  auto parsed = parser.parse(body);
  if (auto* error = std::get_if<RequestError>(&parsed))
    return ApiError{400, std::move(error->message), "invalid_request_error", std::move(error->param),
                    std::move(error->code)};
  const ResponsesRequest& request = *std::get<const ResponsesRequest*>(parsed);
  auto planned = plan_prompt(config, PromptToRoute{request.model, request.requested_output_tokens, request.prompt,
                                                   "input", "max_output_tokens"},
                              trace, parent_span);
  auto* plan = std::get_if<CallPlan>(&planned);
  if (plan == nullptr) return planned;
  plan->operation = kResponsesOperation;
  plan->stream = request.stream;
  plan->count_estimated = request.count_estimated;
  plan->count_partial = request.continuation;
  if (request.continuation) {
    const config::ProviderConfig* home = config.default_provider();
    if (home == nullptr || plan->decision.primary.provider != home->name)
      return ApiError{400,
                      "Invalid 'model': a continuation (previous_response_id or conversation) is served by the default "
                      "provider, which holds the earlier turns; `" +
                          plan->decision.primary.model + "` belongs to another provider.",
                      "invalid_request_error", "model", "invalid_value"};
    auto& fallbacks = plan->decision.fallbacks;
    fallbacks.erase(std::remove_if(fallbacks.begin(), fallbacks.end(),
                                   [&](const routing::Candidate& c) { return c.provider != home->name; }),
                    fallbacks.end());
  }
  return planned;
}

std::string input_tokens_json(const CallPlan& plan) {
  const routing::Candidate& served = plan.decision.primary;
  std::string out = R"({"object":"response.input_tokens","input_tokens":)";
  out += std::to_string(served.prompt_tokens.value());  // planned with count_every_model
  out += R"(,"count_estimated":)";
  out += plan.count_estimated ? "true" : "false";
  out += R"(,"count_partial":)";
  out += plan.count_partial ? "true" : "false";
  out += R"(,"model":)";
  append_json_string(out, served.model);
  out += "}";
  return out;
}

}  // namespace turnout::server
