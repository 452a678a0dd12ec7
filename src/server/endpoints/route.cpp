// POST /route: the routing decision for a chat or Responses request body, nothing sent
// upstream (docs/REFERENCE.md §2.5).
#include "server/call_plan.hpp"
#include "server/endpoints/endpoint.hpp"
#include "server/responses_plan.hpp"

#include <simdjson.h>

namespace turnout::server::endpoints {

namespace {

// A Responses body has `input` and no `messages`; anything else is planned (and, when
// bad, refused) as a chat body. `parser` is only used to look at the two keys.
bool is_responses_body(simdjson::dom::parser& parser, std::string_view body) {
  auto doc = parser.parse(body.data(), body.size());
  if (doc.error() || !doc.value_unsafe().is_object()) return false;
  const simdjson::dom::element root = doc.value_unsafe();
  return !root["input"].error() && root["messages"].error();
}

}  // namespace

boost::asio::awaitable<std::optional<HttpResponse>> route(Services& services, Call& call) {
  const std::string_view body = call.request.body();
  auto planned = is_responses_body(call.worker.response_parser, body)
                     ? plan_responses_call(call.settings.config, call.worker.responses_parser, body)
                     : plan_call(call.settings.config, call.worker.request_parser, body);
  if (auto* error = std::get_if<ApiError>(&planned)) {
    services.metrics.record_rejection(error->code.empty() ? "invalid_request" : error->code, error->status);
    co_return error_response(*error, call.request.version());
  }
  const CallPlan& plan = std::get<CallPlan>(planned);
  call.exchange.model = plan.decision.primary.model;
  call.exchange.route = plan.decision.primary.route;
  call.exchange.prompt_tokens = plan.decision.routing_prompt_tokens;
  co_return json_response(http::status::ok, call.request.version(), route_json(plan));
}

}  // namespace turnout::server::endpoints
