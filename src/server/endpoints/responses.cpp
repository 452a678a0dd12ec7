// POST /v1/responses: parse -> count -> route (tiers, aliases, context fit) -> upstream
// (retries, fallbacks, cooldown) -> meter (usage.input_tokens, cached, output_tokens with
// reasoning) -> ledger (endpoint "responses") -> response (docs/REFERENCE.md §2.15).
// POST /v1/responses/input_tokens answers from the gateway's own count, with no upstream
// call.
#include "metering/responses_usage.hpp"
#include "server/call_record.hpp"
#include "server/call_tracing.hpp"
#include "server/endpoints/buffered_call.hpp"
#include "server/endpoints/responses_call.hpp"
#include "server/endpoints/endpoint.hpp"
#include "server/responses_plan.hpp"

namespace turnout::server::endpoints {
namespace asio = boost::asio;

namespace {

const ForwardedCall kResponses{ledger::kResponsesEndpoint, "response object",
                               [](simdjson::dom::element root, const routing::Candidate& served, const metering::PromptCount& prompt_tokens) {
                                 return metering::meter_response(root, served.encoding, prompt_tokens());
                               }};

asio::awaitable<std::optional<HttpResponse>> serve_responses(Services& services, Call& call) {
  Exchange& ex = call.exchange;
  ex.is_chat = true;  // a forwarded call: the access log carries its cost and attempts
  InflightCall inflight(services);
  const double arrived_unix = unix_now();
  const std::size_t route_span = ex.trace.start("route", tracing::SpanKind::internal);
  auto planned = plan_responses_call(call.settings.config, call.worker.responses_parser, call.request.body(),
                                     &ex.trace, route_span);
  ex.trace.end(route_span);
  if (auto refused = refuse_unplanned(services, call, planned, route_span)) co_return std::move(*refused);
  const CallPlan& plan = std::get<CallPlan>(planned);
  trace_plan(ex.trace, plan, route_span);
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
      ex.trace.end(outcome.attempt_span);  // the served attempt's span covers its whole stream
      finish_metrics(services, ex, outcome, rec.status, ledger::kResponsesEndpoint);
      co_return std::nullopt;
    }
    co_return co_await finish_buffered(services, call, plan, outcome, arrived_unix, kResponses);
  }
  co_return co_await forward_buffered(services, call, plan, arrived_unix, kResponses);
}

}  // namespace

asio::awaitable<std::optional<HttpResponse>> responses(Services& services, Call& call) {
  return serve_traced(services, call, kResponsesOperation, &serve_responses);
}

asio::awaitable<std::optional<HttpResponse>> responses_input_tokens(Services& services, Call& call) {
  auto planned = plan_responses_call(call.settings.config, call.worker.responses_parser, call.request.body());
  if (auto refused = refuse_unplanned(services, call, planned)) co_return std::move(*refused);
  co_return json_response(http::status::ok, call.request.version(), input_tokens_json(std::get<CallPlan>(planned)));
}

}  // namespace turnout::server::endpoints
