// POST /v1/chat/completions (and /chat/completions): parse -> count -> route -> upstream
// (retries, fallbacks) -> meter -> ledger -> response (docs/REFERENCE.md §2.2, §2.3).
#include "metering/call_bill.hpp"
#include "server/admit_call.hpp"
#include "server/attempts.hpp"
#include "server/call_plan.hpp"
#include "server/call_tracing.hpp"
#include "server/endpoints/chat_call.hpp"
#include "server/endpoints/endpoint.hpp"
#include "server/openai_error.hpp"
#include "server/recording.hpp"
#include "server/upstream_errors.hpp"

#include <atomic>

namespace turnout::server::endpoints {
namespace asio = boost::asio;

namespace {

void finish_metrics(Services& services, const Exchange& ex, const CallOutcome& outcome, unsigned status) {
  RequestObservation obs;
  obs.model = ex.model;
  obs.route = ex.route;
  obs.status = status;
  obs.duration_s = std::chrono::duration<double>(Clock::now() - ex.start).count();
  obs.upstream_s = std::chrono::duration<double>(ex.upstream).count();
  obs.overhead_s = static_cast<double>(overhead_us(ex)) / 1e6;
  obs.prompt_tokens = ex.prompt_tokens;
  obs.completion_tokens = ex.completion_tokens;
  obs.cost = ex.cost;
  obs.retries = outcome.retries;
  obs.fallbacks = outcome.fallbacks;
  services.metrics.record_request(obs);
}

ledger::CallRecord start_record(const Services& services, const Exchange& ex, const CallPlan& plan,
                                const CallOutcome& outcome, double arrived_unix) {
  const routing::Candidate& served = *outcome.served;
  ledger::CallRecord rec;
  rec.id = ex.request_id;
  rec.timestamp = arrived_unix;
  rec.instance_id = services.options.instance_id;
  rec.client_key_id = ex.key_id;
  rec.requested_model = plan.requested_model;
  rec.model = served.model;
  rec.route = outcome.route;
  rec.counted_prompt_tokens = served.prompt_tokens;
  rec.attempts = static_cast<int>(ex.attempts);
  rec.stream = plan.stream;
  return rec;
}

// A buffered call's answer: the upstream's chat.completion with cost_usd and latency_ms
// added, the upstream's error, or the gateway's own error; `rec` gets the usage and status.
HttpResponse buffered_answer(Call& call, const CallOutcome& outcome, ledger::CallRecord& rec,
                             std::optional<upstream::Response>& response) {
  const unsigned version = call.request.version();
  const routing::Candidate& served = *outcome.served;
  HttpResponse res;
  metering::MeteredUsage metered;  // failed calls: zero tokens, zero cost
  std::string body;
  if (outcome.cancelled) {
    // Cut by the end of the shutdown grace before an answer came: nothing to bill.
    const ApiError cut = shutdown_error(false);
    res = error_response(cut, version);
    rec.error_type = cut.code;
  } else if (response && response->status >= 200 && response->status < 300) {
    auto parsed = call.worker.response_parser.parse(response->body);
    std::optional<metering::MeteredUsage> usage;
    if (!parsed.error()) usage = metering::meter_completion(parsed.value_unsafe(), served.encoding, served.prompt_tokens);
    if (!usage) {
      res = error_response(ApiError{502, "The upstream returned a malformed chat completion (not the expected JSON).",
                                    "upstream_error", "", "upstream_malformed"},
                           version);
      rec.error_type = "upstream_malformed";
    } else {
      metered = *usage;
      body = std::move(response->body);
      res = HttpResponse{http::status::ok, version};
      res.set(http::field::content_type, "application/json");
    }
  } else if (response) {
    const config::ProviderConfig* provider = call.settings.config.find_provider(served.provider);
    res = upstream_error_response(call.worker.response_parser, *response, version, served.provider,
                                  provider ? std::string_view(provider->api_key) : std::string_view());
    rec.error_type = upstream_error_type(response->status);
  } else {
    const ApiError failure = failure_error(outcome.failure);
    res = error_response(failure, version);
    rec.error_type = failure.code;
  }
  metering::bill_record(rec, metered, served.rates, call.settings.baseline_rates);
  rec.status = res.result_int();
  rec.latency_ms = ms_between(call.exchange.start, Clock::now());
  if (!body.empty()) {
    metering::add_gateway_fields(body, rec.cost, rec.latency_ms);
    res.body() = std::move(body);
  }
  return res;
}

}  // namespace

ApiError shutdown_error(bool stream_started) {
  return ApiError{503,
                  stream_started ? "The gateway is shutting down: the stream was cut before the upstream finished."
                                 : "The gateway is shutting down: the call was cancelled before the upstream answered.",
                  "server_error", "", "shutdown"};
}

metering::CallHeaders call_headers(const CallPlan& plan, const CallOutcome& outcome, const Exchange& exchange,
                                   std::optional<pricing::Money> cost) {
  const routing::Candidate& served = *outcome.served;
  metering::CallHeaders headers;
  headers.model = served.model;
  headers.route = outcome.route;
  headers.routing_prompt_tokens = plan.decision.routing_prompt_tokens;
  if (served.encoding != plan.decision.routing_encoding) headers.model_prompt_tokens = served.prompt_tokens;
  headers.attempts = exchange.attempts;
  headers.overhead_us = overhead_us(exchange);
  headers.cost = cost;
  return headers;
}

namespace {

asio::awaitable<std::optional<HttpResponse>> serve_chat(Services& services, Call& call) {
  Exchange& ex = call.exchange;
  ex.is_chat = true;
  // Chat calls only: a scrape of /metrics does not count itself.
  ++services.metrics.inflight();
  struct InflightDown {
    std::atomic<long>& n;
    ~InflightDown() { --n; }
  } inflight_down{services.metrics.inflight()};
  const unsigned version = call.request.version();
  const double arrived_unix = unix_now();

  const std::size_t route_span = ex.trace.start("route", tracing::SpanKind::internal);
  auto planned = plan_call(call.settings.config, call.worker.request_parser, call.request.body(), &ex.trace, route_span);
  ex.trace.end(route_span);
  if (auto* error = std::get_if<ApiError>(&planned)) {
    services.metrics.record_rejection(error->code.empty() ? "invalid_request" : error->code, error->status);
    ex.error_type = error->code;
    ex.trace.fail(route_span, error->code);
    co_return error_response(*error, version);
  }
  CallPlan plan = std::move(std::get<CallPlan>(planned));
  if (ex.trace.sampled()) {
    ex.trace.set(0, "gen_ai.request.model", plan.requested_model.empty() ? std::string("auto") : plan.requested_model);
    ex.trace.set(route_span, "turnout.route", plan.decision.primary.route);
    ex.trace.set(route_span, "turnout.model", plan.decision.primary.model);
    ex.trace.set(route_span, "turnout.prompt_tokens", static_cast<std::int64_t>(plan.decision.routing_prompt_tokens));
  }
  if (const auto health = services.ledger.health(); !health.healthy) {
    services.metrics.record_rejection("ledger_unavailable", 503);
    co_return error_response(ApiError{503, "The gateway cannot record calls right now: " + health.reason,
                                      "server_error", "", "ledger_unavailable"},
                             version);
  }
  if (call.connection.shutdown.requested) {
    // Arrived after the shutdown grace ended: refused before the upstream.
    services.metrics.record_rejection("shutdown", 503);
    ex.error_type = "shutdown";
    co_return error_response(
        ApiError{503, "The gateway is shutting down; retry on another instance.", "server_error", "", "shutdown"},
        version);
  }

  // A virtual key: allow-lists and the budget hold, after every other check that could
  // refuse the call, so that a hold taken is always settled by the call's record.
  std::string hold_id;
  if (ex.grant) {
    auto admitted = co_await admit_call(services, call.settings.config, *ex.grant, plan);
    if (auto* refusal = std::get_if<admit::Refusal>(&admitted)) {
      services.metrics.record_rejection(refusal->code, refusal->status);
      ex.error_type = refusal->code;
      co_return refusal_response(*refusal, version);
    }
    auto& granted = std::get<admit::Admitted>(admitted);
    hold_id = std::move(granted.hold_id);
    ex.limit_headers = std::move(granted.headers);
  }

  CallOutcome outcome = co_await run_attempts(services, call, plan, call.request.body());
  ledger::CallRecord rec = start_record(services, ex, plan, outcome, arrived_unix);
  rec.hold_id = std::move(hold_id);
  ex.model = rec.model;
  ex.route = rec.route;

  if (outcome.stream) {
    co_await relay_chat_stream(services, call, plan, outcome, rec);
    ex.trace.end(outcome.attempt_span);  // the served attempt's span covers its whole stream
    finish_metrics(services, ex, outcome, rec.status);
    co_return std::nullopt;
  }

  HttpResponse res = buffered_answer(call, outcome, rec, outcome.response);
  ex.prompt_tokens = rec.usage.prompt_tokens;  // what the ledger bills: none for a failed call
  ex.completion_tokens = rec.usage.completion_tokens;
  ex.cost = rec.cost;
  ex.error_type = rec.error_type;
  if (!co_await record_durably(services, ex, rec)) {
    // The record is only in memory: the answer must not be acknowledged.
    res = error_response(not_recorded_error(), version);
    ex.error_type = "ledger_unavailable";
  }

  metering::set_call_headers(res, call_headers(plan, outcome, ex, rec.cost));
  finish_metrics(services, ex, outcome, res.result_int());
  co_return res;
}

}  // namespace

asio::awaitable<std::optional<HttpResponse>> chat_completions(Services& services, Call& call) {
  if (!services.tracer) co_return co_await serve_chat(services, call);  // tracing off: this branch only
  begin_call_trace(services, call);
  auto answered = co_await serve_chat(services, call);
  finish_call_trace(services, call, answered ? answered->result_int() : call.exchange.stream_status);
  co_return answered;
}

}  // namespace turnout::server::endpoints
