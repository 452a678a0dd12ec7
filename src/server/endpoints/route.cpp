// POST /route: the routing decision for a chat request body, nothing sent upstream
// (docs/REFERENCE.md §2.5).
#include "server/call_plan.hpp"
#include "server/endpoints/endpoint.hpp"

namespace turnout::server::endpoints {

boost::asio::awaitable<std::optional<HttpResponse>> route(Services& services, Call& call) {
  auto planned = plan_call(call.settings.config, call.worker.request_parser, call.request.body());
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
