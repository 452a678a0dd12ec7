// POST /v1/chat/completions (and /chat/completions): parse -> count -> route -> upstream
// (retries, fallbacks) -> meter -> ledger -> response (docs/REFERENCE.md §2.2, §2.3).
#include "metering/call_bill.hpp"
#include "server/attempts.hpp"
#include "server/call_record.hpp"
#include "server/call_plan.hpp"
#include "server/endpoints/chat_call.hpp"
#include "server/endpoints/endpoint.hpp"
#include "server/openai_error.hpp"
#include "server/recording.hpp"
#include "server/upstream_errors.hpp"

#include <atomic>

namespace turnout::server::endpoints {
namespace asio = boost::asio;

namespace {

// A buffered call's answer: the upstream's chat.completion with cost_usd and latency_ms
// added, the upstream's error, or the gateway's own error; `rec` gets the usage and status.
HttpResponse buffered_answer(Services& services, Call& call, const CallOutcome& outcome, ledger::CallRecord& rec,
                             std::optional<upstream::Response>& response) {
  const unsigned version = call.request.version();
  const routing::Candidate& served = *outcome.served;
  HttpResponse res;
  metering::MeteredUsage metered;  // failed calls: zero tokens, zero cost
  std::string body;
  if (response && response->status >= 200 && response->status < 300) {
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
    res = upstream_error_response(call.worker.response_parser, *response, version);
    rec.error_type = upstream_error_type(response->status);
  } else {
    const ApiError failure = failure_error(outcome.failure);
    res = error_response(failure, version);
    rec.error_type = failure.code;
  }
  metering::bill_record(rec, metered, served.rates, services.baseline_rates);
  rec.status = res.result_int();
  rec.latency_ms = ms_between(call.exchange.start, Clock::now());
  if (!body.empty()) {
    metering::add_gateway_fields(body, rec.cost, rec.latency_ms);
    res.body() = std::move(body);
  }
  return res;
}

}  // namespace

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

asio::awaitable<std::optional<HttpResponse>> chat_completions(Services& services, Call& call) {
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

  auto planned = plan_call(services.config, call.worker.request_parser, call.request.body());
  if (auto* error = std::get_if<ApiError>(&planned)) {
    services.metrics.record_rejection(error->code.empty() ? "invalid_request" : error->code, error->status);
    ex.error_type = error->code;
    co_return error_response(*error, version);
  }
  CallPlan plan = std::move(std::get<CallPlan>(planned));
  if (const auto health = services.ledger.health(); !health.healthy) {
    services.metrics.record_rejection("ledger_unavailable", 503);
    co_return error_response(ApiError{503, "The gateway cannot record calls right now: " + health.reason,
                                      "server_error", "", "ledger_unavailable"},
                             version);
  }

  CallOutcome outcome = co_await run_attempts(services, call, plan, call.request.body());
  ledger::CallRecord rec = start_record(services, ex, plan, outcome, arrived_unix, ledger::kChatEndpoint);
  ex.model = rec.model;
  ex.route = rec.route;

  if (outcome.stream) {
    co_await relay_chat_stream(services, call, plan, outcome, rec);
    finish_metrics(services, ex, outcome, rec.status, ledger::kChatEndpoint);
    co_return std::nullopt;
  }

  HttpResponse res = buffered_answer(services, call, outcome, rec, outcome.response);
  ex.prompt_tokens = rec.usage.prompt_tokens;  // what the ledger bills: none for a failed call
  ex.completion_tokens = rec.usage.completion_tokens;
  ex.cost = rec.cost;
  ex.error_type = rec.error_type;
  co_await record_durably(services, ex, rec);

  metering::set_call_headers(res, call_headers(plan, outcome, ex, rec.cost));
  finish_metrics(services, ex, outcome, res.result_int(), ledger::kChatEndpoint);
  co_return res;
}

}  // namespace turnout::server::endpoints
