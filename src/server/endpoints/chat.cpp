// POST /v1/chat/completions (and /chat/completions): parse -> count -> route -> upstream
// (retries, fallbacks) -> meter -> ledger -> response (docs/REFERENCE.md §2.2, §2.3).
#include "metering/call_bill.hpp"
#include "metering/usage.hpp"
#include "server/attempts.hpp"
#include "server/call_record.hpp"
#include "server/call_plan.hpp"
#include "server/call_tracing.hpp"
#include "server/endpoints/buffered_call.hpp"
#include "server/endpoints/chat_call.hpp"
#include "server/endpoints/endpoint.hpp"
#include "server/openai_error.hpp"

namespace turnout::server::endpoints {
namespace asio = boost::asio;

namespace {

const ForwardedCall kChat{ledger::kChatEndpoint, "chat completion",
                          [](simdjson::dom::element root, const routing::Candidate& served,
                             const metering::PromptCount& prompt_tokens) {
                            return metering::meter_completion(root, served.encoding, prompt_tokens);
                          }};

}  // namespace

ApiError shutdown_error(bool stream_started) {
  return ApiError{503,
                  stream_started ? "The gateway is shutting down: the stream was cut before the upstream finished."
                                 : "The gateway is shutting down: the call was cancelled before the upstream answered.",
                  "server_error", "", "shutdown"};
}

metering::CallHeaders call_headers(const CallPlan& plan, const CallOutcome& outcome, const Exchange& exchange,
                                   std::optional<std::uint64_t> model_prompt_tokens,
                                   std::optional<pricing::Money> cost) {
  const routing::Candidate& served = *outcome.served;
  metering::CallHeaders headers;
  headers.model = served.model;
  headers.route = outcome.route;
  headers.routing_prompt_tokens = plan.decision.routing_prompt_tokens;
  if (served.encoding != plan.decision.routing_encoding) headers.model_prompt_tokens = model_prompt_tokens;
  headers.attempts = exchange.attempts;
  headers.overhead_us = overhead_us(exchange);
  headers.cost = cost;
  return headers;
}

namespace {

asio::awaitable<std::optional<HttpResponse>> serve_chat(Services& services, Call& call) {
  Exchange& ex = call.exchange;
  ex.is_chat = true;
  InflightCall inflight(services);  // forwarded calls only: a scrape of /metrics does not count itself
  const double arrived_unix = unix_now();

  const std::size_t route_span = ex.trace.start("route", tracing::SpanKind::internal);
  // A virtual key's hold and token reservation price every candidate with its own count;
  // otherwise a count the context fit does not need is left out (call_plan.hpp).
  const bool count_every_model = ex.grant != nullptr;
  auto planned = plan_call(call.settings.config, call.worker.request_parser, call.request.body(), &ex.trace, route_span,
                           count_every_model);
  ex.trace.end(route_span);
  if (auto refused = refuse_unplanned(services, call, planned, route_span)) co_return std::move(*refused);
  CallPlan plan = std::move(std::get<CallPlan>(planned));
  trace_plan(ex.trace, plan, route_span);
  if (auto refused = co_await admit_before_upstream(services, call, plan)) co_return std::move(*refused);

  CallOutcome outcome = co_await run_attempts(services, call, plan, call.request.body());
  if (outcome.stream) {
    ledger::CallRecord rec = start_record(services, ex, plan, outcome, arrived_unix, ledger::kChatEndpoint);
    ex.model = rec.model;
    ex.route = rec.route;
    co_await relay_chat_stream(services, call, plan, outcome, rec);
    ex.trace.end(outcome.attempt_span);  // the served attempt's span covers its whole stream
    finish_metrics(services, ex, outcome, rec.status, ledger::kChatEndpoint);
    co_return std::nullopt;
  }
  co_return co_await finish_buffered(services, call, plan, outcome, arrived_unix, kChat);
}

}  // namespace

asio::awaitable<std::optional<HttpResponse>> chat_completions(Services& services, Call& call) {
  return serve_traced(services, call, kChatOperation, &serve_chat);
}

}  // namespace turnout::server::endpoints
