// POST /v1/responses: parse -> count -> route (tiers, aliases, context fit) -> upstream
// (retries, fallbacks, cooldown) -> meter (usage.input_tokens, cached, output_tokens with
// reasoning) -> ledger (endpoint "responses") -> response (docs/REFERENCE.md §2.15).
// POST /v1/responses/input_tokens answers from the gateway's own count, with no upstream
// call.
#include "metering/responses_usage.hpp"
#include "server/call_record.hpp"
#include "server/endpoints/buffered_call.hpp"
#include "server/endpoints/responses_call.hpp"
#include "server/endpoints/endpoint.hpp"
#include "server/responses_plan.hpp"

namespace turnout::server::endpoints {
namespace asio = boost::asio;

namespace {

const ForwardedCall kResponses{ledger::kResponsesEndpoint, "response object",
                               [](simdjson::dom::element root, const routing::Candidate& served) {
                                 return metering::meter_response(root, served.encoding, served.prompt_tokens);
                               }};

}  // namespace

asio::awaitable<std::optional<HttpResponse>> responses(Services& services, Call& call) {
  Exchange& ex = call.exchange;
  ex.is_chat = true;  // a forwarded call: the access log carries its cost and attempts
  InflightCall inflight(services);
  const double arrived_unix = unix_now();
  auto planned = plan_responses_call(call.settings.config, call.worker.responses_parser, call.request.body());
  if (auto* error = std::get_if<ApiError>(&planned)) {
    services.metrics.record_rejection(error->code.empty() ? "invalid_request" : error->code, error->status);
    ex.error_type = error->code;
    co_return error_response(*error, call.request.version());
  }
  const CallPlan& plan = std::get<CallPlan>(planned);
  if (plan.stream) {
    if (auto refused = co_await admit_before_upstream(services, call, plan)) co_return std::move(*refused);
    // Failures before the first event are retried and fall back like buffered ones; the
    // answer is then buffered (an error, or a non-stream body) or relayed.
    CallOutcome outcome = co_await run_attempts(services, call, plan, call.request.body());
    if (outcome.stream) {
      ledger::CallRecord rec = start_record(services, ex, plan, outcome, arrived_unix, ledger::kResponsesEndpoint);
      ex.model = rec.model;
      ex.route = rec.route;
      co_await relay_responses_stream(services, call, plan, outcome, rec);
      finish_metrics(services, ex, outcome, rec.status, ledger::kResponsesEndpoint);
      co_return std::nullopt;
    }
    co_return co_await finish_buffered(services, call, plan, outcome, arrived_unix, kResponses);
  }
  co_return co_await forward_buffered(services, call, plan, arrived_unix, kResponses);
}

asio::awaitable<std::optional<HttpResponse>> responses_input_tokens(Services& services, Call& call) {
  auto planned = plan_responses_call(call.settings.config, call.worker.responses_parser, call.request.body());
  if (auto* error = std::get_if<ApiError>(&planned)) {
    services.metrics.record_rejection(error->code.empty() ? "invalid_request" : error->code, error->status);
    call.exchange.error_type = error->code;
    co_return error_response(*error, call.request.version());
  }
  co_return json_response(http::status::ok, call.request.version(), input_tokens_json(std::get<CallPlan>(planned)));
}

}  // namespace turnout::server::endpoints
