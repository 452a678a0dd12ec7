#include "server/endpoints/buffered_call.hpp"

#include "metering/call_bill.hpp"
#include "server/admit_call.hpp"
#include "server/attempts.hpp"
#include "server/call_record.hpp"
#include "server/endpoints/chat_call.hpp"
#include "server/openai_error.hpp"
#include "server/recording.hpp"
#include "server/upstream_errors.hpp"

#include <fmt/format.h>
#include <simdjson.h>

namespace turnout::server::endpoints {
namespace asio = boost::asio;

// The room reserved past the upstream body for the cost_usd splice also lets simdjson parse
// the body where it is: it copies a body whose capacity leaves less than its padding.
static_assert(metering::kGatewayFieldsRoom >= simdjson::SIMDJSON_PADDING);

namespace {

// The upstream's answer with cost_usd and latency_ms added, the upstream's error, or the
// gateway's own; `rec` gets the usage, cost and status.
HttpResponse answer(Call& call, const CallPlan& plan, CallOutcome& outcome, ledger::CallRecord& rec,
                    const ForwardedCall& kind) {
  const unsigned version = call.request.version();
  const routing::Candidate& served = *outcome.served;
  std::optional<upstream::Response>& response = outcome.response;
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
    const metering::PromptCount prompt_tokens = [&] { return served_prompt_tokens(call, plan, served, rec); };
    if (!parsed.error()) usage = kind.meter(parsed.value_unsafe(), served, prompt_tokens);
    if (!usage) {
      res = error_response(
          ApiError{502, fmt::format("The upstream returned a malformed {} (not the expected JSON).", kind.answer_kind),
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

InflightCall::InflightCall(Services& services) : services_(services) { ++services_.metrics.inflight(); }
InflightCall::~InflightCall() { --services_.metrics.inflight(); }

std::optional<HttpResponse> refuse_unplanned(Services& services, Call& call,
                                             const std::variant<CallPlan, ApiError>& planned, std::size_t route_span) {
  const auto* error = std::get_if<ApiError>(&planned);
  if (error == nullptr) return std::nullopt;
  services.metrics.record_rejection(error->code.empty() ? "invalid_request" : error->code, error->status);
  call.exchange.error_type = error->code;
  call.exchange.trace.fail(route_span, error->code);
  return error_response(*error, call.request.version());
}

asio::awaitable<std::optional<HttpResponse>> admit_before_upstream(Services& services, Call& call,
                                                                   const CallPlan& plan) {
  const unsigned version = call.request.version();
  if (const auto health = services.ledger.health(); !health.healthy) {
    services.metrics.record_rejection("ledger_unavailable", 503);
    call.exchange.error_type = "ledger_unavailable";
    co_return error_response(ApiError{503, "The gateway cannot record calls right now: " + health.reason, "server_error",
                                   "", "ledger_unavailable"},
                          version);
  }
  if (call.connection.shutdown.requested) {
    // Arrived after the shutdown grace ended: refused before the upstream.
    services.metrics.record_rejection("shutdown", 503);
    call.exchange.error_type = "shutdown";
    co_return error_response(
        ApiError{503, "The gateway is shutting down; retry on another instance.", "server_error", "", "shutdown"},
        version);
  }
  // A virtual key: allow-lists and the budget hold come last, after every other check
  // that could refuse the call, so that a hold taken is always settled by the call's record.
  Exchange& ex = call.exchange;
  if (ex.grant) {
    auto admitted = co_await admit_call(services, call.settings.config, *ex.grant, plan);
    if (auto* refusal = std::get_if<admit::Refusal>(&admitted)) {
      services.metrics.record_rejection(refusal->code, refusal->status);
      ex.error_type = refusal->code;
      co_return refusal_response(*refusal, version);
    }
    auto& granted = std::get<admit::Admitted>(admitted);
    ex.hold_id = std::move(granted.hold_id);
    ex.limit_headers = std::move(granted.headers);
    ex.clamped_output_tokens = granted.max_completion_tokens;
  }
  co_return std::nullopt;
}

asio::awaitable<HttpResponse> forward_buffered(Services& services, Call& call, const CallPlan& plan,
                                               double arrived_unix, const ForwardedCall& kind) {
  if (auto refused = co_await admit_before_upstream(services, call, plan)) co_return std::move(*refused);
  CallOutcome outcome = co_await run_attempts(services, call, plan, call.request.body());
  co_return co_await finish_buffered(services, call, plan, outcome, arrived_unix, kind);
}

asio::awaitable<HttpResponse> finish_buffered(Services& services, Call& call, const CallPlan& plan,
                                              CallOutcome& outcome, double arrived_unix, const ForwardedCall& kind) {
  Exchange& ex = call.exchange;
  ledger::CallRecord rec = start_record(services, ex, plan, outcome, arrived_unix, kind.endpoint);
  ex.model = rec.model;
  ex.route = rec.route;

  HttpResponse res = answer(call, plan, outcome, rec, kind);
  ex.prompt_tokens = rec.usage.prompt_tokens;
  ex.completion_tokens = rec.usage.completion_tokens;
  ex.cost = rec.cost;
  ex.error_type = rec.error_type;
  if (!co_await record_durably(services, call.worker, ex, rec)) {
    // The record is only in memory: the answer must not be acknowledged.
    res = error_response(not_recorded_error(), call.request.version());
    ex.error_type = "ledger_unavailable";
  }

  // Room for these and the x-request-id the gateway adds: one allocation, not one per doubling.
  res.raw_fields.reserve(metering::kCallFieldsCapacity);
  metering::append_call_headers(res.raw_fields, call_headers(plan, outcome, ex, rec.counted_prompt_tokens, rec.cost));
  finish_metrics(services, ex, outcome, res.result_int(), kind.endpoint);
  co_return res;
}

}  // namespace turnout::server::endpoints
