#include "server/attempts.hpp"

#include "common/json_text.hpp"
#include "metering/call_bill.hpp"
#include "server/call_tracing.hpp"
#include "server/sse.hpp"
#include "server/upstream_errors.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/logger.h>

#include <vector>

namespace turnout::server {
namespace asio = boost::asio;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// The routed model and its fallbacks, less those cooling down (all of them cooling down:
// the routed model alone, rather than fail a request nothing was tried for; its answer
// also ends the cooldown sooner when the model has recovered).
std::vector<const routing::Candidate*> candidates_to_try(resilience::ModelCooldowns& cooldowns, const CallPlan& plan) {
  const auto now = Clock::now();
  std::vector<const routing::Candidate*> candidates;
  candidates.reserve(1 + plan.decision.fallbacks.size());
  if (!cooldowns.cooling_down(plan.decision.primary.model, now)) candidates.push_back(&plan.decision.primary);
  for (const auto& fallback : plan.decision.fallbacks) {
    if (!cooldowns.cooling_down(fallback.model, now)) candidates.push_back(&fallback);
  }
  if (candidates.empty()) candidates.push_back(&plan.decision.primary);
  return candidates;
}

void record_attempt_outcome(Services& services, const ConfigSnapshot& settings, const routing::Candidate& candidate,
                            bool retryable_failure) {
  if (!retryable_failure) {
    settings.cooldowns->record_success(candidate.model);
  } else if (settings.cooldowns->record_failure(candidate.model, Clock::now()) && services.options.access_log) {
    std::string line = R"({"event":"model_cooldown","model":)";
    append_json_string(line, candidate.model);
    line += fmt::format(R"(,"duration_s":{}}})", settings.config.routing.cooldown.duration_s);
    services.options.access_log->warn(line);
  }
}

// W3C Trace Context upstream: the attempt's traceparent, and the client's tracestate with
// it when the trace continues the client's (a new trace starts with no vendor state). A
// tracestate over the W3C's 512-character limit is dropped, as the spec allows.
void add_trace_headers(upstream::Request& request, const tracing::CallTrace& trace, std::size_t span,
                       const HttpRequest& incoming) {
  request.headers.emplace_back("traceparent", trace.traceparent(span));
  const std::string_view tracestate = incoming["tracestate"];
  constexpr std::size_t kMaxTracestate = 512;
  if (trace.continues_client() && !tracestate.empty() && tracestate.size() <= kMaxTracestate)
    request.headers.emplace_back("tracestate", std::string(tracestate));
}

// The attempt's client span (GenAI semantic conventions): what was asked of whom.
std::size_t start_attempt_span(tracing::CallTrace& trace, std::string_view operation,
                               const routing::Candidate& candidate, const config::ProviderConfig& provider,
                               const upstream::Endpoint& endpoint, unsigned attempt, bool is_fallback) {
  const std::string_view operation_name = gen_ai_operation_name(operation);
  const std::size_t span =
      trace.start(std::string(operation_name) + " " + candidate.upstream_name, tracing::SpanKind::client);
  if (span == tracing::CallTrace::kNone) return span;
  const std::string system = provider.type == config::ProviderType::azure ? "azure.ai.openai" : "openai";
  trace.set(span, "gen_ai.operation.name", std::string(operation_name));
  trace.set(span, "gen_ai.system", system);
  trace.set(span, "gen_ai.provider.name", system);
  trace.set(span, "gen_ai.request.model", candidate.upstream_name);
  trace.set(span, "server.address", endpoint.host);
  trace.set(span, "server.port", static_cast<std::int64_t>(std::stoi(endpoint.port)));
  trace.set(span, "turnout.provider", provider.name);
  trace.set(span, "turnout.model", candidate.model);
  trace.set(span, "turnout.attempt", static_cast<std::int64_t>(attempt + 1));
  trace.set(span, "turnout.fallback", is_fallback);
  return span;
}

void end_attempt_span(tracing::CallTrace& trace, std::size_t span, const CallOutcome& out, bool ends_now) {
  if (span == tracing::CallTrace::kNone) return;
  if (out.response) {
    trace.set(span, "http.response.status_code", static_cast<std::int64_t>(out.response->status));
    if (out.response->status >= 400) {
      trace.set(span, "error.type", std::to_string(out.response->status));
      trace.fail(span, "upstream status " + std::to_string(out.response->status));
    }
  } else if (out.stream) {
    trace.set(span, "http.response.status_code", static_cast<std::int64_t>(out.stream->status()));
  } else if (out.failure) {
    const ApiError error = failure_error(out.failure);
    trace.set(span, "error.type", error.code);
    trace.fail(span, error.code);
  } else {
    trace.set(span, "error.type", std::string("cancelled"));
  }
  if (ends_now) trace.end(span);
}

// One attempt each; true when the outcome may be retried.
asio::awaitable<bool> attempt_buffered(WorkerState& worker, const upstream::Request& request, CallOutcome& out) {
  auto result = co_await worker.client.send(request);
  if (!result) {
    out.failure = std::move(result.error());
    out.response.reset();
    // An answer too large to take would be as large again: not worth paying for twice.
    co_return out.failure->kind != upstream::FailureKind::too_large;
  }
  out.response = std::move(result.value());
  out.failure.reset();
  co_return resilience::retryable_status(out.response->status);
}

asio::awaitable<bool> attempt_stream(WorkerState& worker, const upstream::Request& request,
                                     const config::ProviderConfig& provider, CallOutcome& out) {
  out.response.reset();
  out.failure.reset();
  out.stream.reset();
  out.stream_events = SseFramer(kMaxSseEventBytes);
  const auto idle = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(provider.stream_idle_timeout_s));
  auto opened = co_await worker.client.open_stream(request, idle);
  if (!opened) {
    out.failure = std::move(opened.error());
    co_return true;
  }
  upstream::ResponseStream stream = std::move(opened.value());
  if (stream.status() < 200 || stream.status() >= 300) {
    auto rest = co_await stream.read_rest();
    if (!rest) {
      out.failure = std::move(rest.error());
      co_return true;
    }
    out.response = upstream::Response{stream.status(), stream.content_type(), stream.retry_after(), std::move(*rest)};
    co_return resilience::retryable_status(stream.status());
  }
  // Nothing reaches the client before the first complete event, so a failure up to here
  // is still retried (docs/REFERENCE.md §2.3, §4.4).
  while (!out.stream_events.has_complete_event()) {
    if (out.stream_events.oversized()) {
      out.failure = upstream::Failure{upstream::FailureKind::malformed,
                                      fmt::format("the upstream's first stream event is larger than {} bytes",
                                                  kMaxSseEventBytes)};
      co_return true;
    }
    auto chunk = co_await stream.next();
    if (!chunk) {
      out.failure = std::move(chunk.error());
      co_return true;
    }
    if (!chunk.value()) {
      out.failure = upstream::Failure{upstream::FailureKind::reset, "the upstream ended the stream before any event"};
      co_return true;
    }
    out.stream_events.append(**chunk);
  }
  out.stream.emplace(std::move(stream));
  co_return false;
}

// Runs one attempt as a coroutine of its own with the connection's shutdown signal bound
// to it: at the end of the shutdown grace, the upstream operation it is waiting on
// (resolve excepted) completes with operation_aborted, any later wait of the attempt throws
// it, and the attempt's upstream connection is closed, never pooled. nullopt: cancelled so
// (no answer to use); otherwise whether the outcome may be retried.
asio::awaitable<std::optional<bool>> cancellable(listener::ShutdownCancellation& shutdown, CallOutcome& out,
                                                 asio::awaitable<bool> attempt) {
  auto executor = co_await asio::this_coro::executor;
  auto [thrown, retryable] =
      co_await asio::co_spawn(executor, std::move(attempt), asio::bind_cancellation_slot(shutdown.signal.slot(), use_tuple));
  shutdown.signal.slot().clear();
  if (thrown) {
    if (!shutdown.requested) std::rethrow_exception(thrown);
    co_return std::nullopt;
  }
  // A failure that ends with the grace is the cancellation's doing; a complete answer
  // that arrived just in time is still used.
  if (shutdown.requested && !out.response && !out.stream) co_return std::nullopt;
  co_return retryable;
}

}  // namespace

asio::awaitable<CallOutcome> run_attempts(Services& services, Call& call, const CallPlan& plan, std::string_view body) {
  Exchange& ex = call.exchange;
  WorkerState& worker = call.worker;
  listener::ShutdownCancellation& shutdown = call.connection.shutdown;
  const ConfigSnapshot& settings = call.settings;
  const routing::Candidate& primary = plan.decision.primary;
  CallOutcome out;
  out.served = &primary;
  for (const routing::Candidate* next : candidates_to_try(*settings.cooldowns, plan)) {
    const routing::Candidate& candidate = *next;
    const bool is_fallback = &candidate != &primary;
    const config::ProviderConfig* provider = settings.config.find_provider(candidate.provider);
    const auto endpoint = settings.upstream_endpoints.find(candidate.provider);
    if (provider == nullptr || endpoint == settings.upstream_endpoints.end()) continue;
    if (is_fallback) ++out.fallbacks;
    // The body reaches the upstream unchanged but for `model` (and, for chat streams, the
    // usage request the gateway always makes).
    const bool ask_stream_usage = plan.stream && plan.operation == kChatOperation;
    std::string extra = "\"model\":";
    append_json_string(extra, candidate.upstream_name);
    if (ask_stream_usage) extra += R"(,"stream_options":{"include_usage":true})";
    // A clamped call (on_insufficient: clamp) goes with the output limit its hold fits.
    std::string forwarded;
    if (ex.clamped_output_tokens) {
      extra += ",\"max_completion_tokens\":" + std::to_string(*ex.clamped_output_tokens);
      forwarded = ask_stream_usage
                      ? rewrite_top_level(body, {"model", "stream_options", "max_tokens", "max_completion_tokens"}, extra)
                      : rewrite_top_level(body, {"model", "max_tokens", "max_completion_tokens"}, extra);
    } else {
      forwarded = ask_stream_usage ? rewrite_top_level(body, {"model", "stream_options"}, extra)
                                   : rewrite_top_level(body, {"model"}, extra);
    }
    for (unsigned attempt = 0;; ++attempt) {
      if (shutdown.requested) {
        out.cancelled = true;
        co_return out;
      }
      ++ex.attempts;
      out.served = &candidate;
      out.route = is_fallback ? "fallback:" + primary.model : candidate.route;
      auto request = upstream::make_provider_request(*provider, endpoint->second, plan.operation,
                                                     candidate.upstream_name, forwarded, ex.request_id);
      const std::size_t span =
          start_attempt_span(ex.trace, plan.operation, candidate, *provider, endpoint->second, attempt, is_fallback);
      if (ex.trace.active()) add_trace_headers(request, ex.trace, span, call.request);
      if (!plan.stream) request.response_room = metering::kGatewayFieldsRoom;
      out.attempt_span = span;
      const auto sent = Clock::now();
      // (No co_await inside ?: — GCC 12 miscompiles temporaries there.)
      std::optional<bool> retryable;
      if (plan.stream) {
        retryable = co_await cancellable(shutdown, out, attempt_stream(worker, request, *provider, out));
      } else {
        retryable = co_await cancellable(shutdown, out, attempt_buffered(worker, request, out));
      }
      ex.upstream += Clock::now() - sent;
      end_attempt_span(ex.trace, span, out, !out.stream);
      if (!retryable) {
        out.response.reset();
        out.failure.reset();
        out.stream.reset();
        out.cancelled = true;
        co_return out;
      }
      record_attempt_outcome(services, settings, candidate, *retryable);
      if (!*retryable) co_return out;
      if (!settings.retry_policy.may_retry(attempt)) break;  // next candidate
      ++out.retries;
      std::optional<std::string_view> retry_after;
      if (out.response && out.response->retry_after) retry_after = *out.response->retry_after;
      const auto wait = settings.retry_policy.wait_before_retry(attempt, retry_after, unix_now(), worker.rng);
      const auto slept = Clock::now();
      asio::steady_timer timer(co_await asio::this_coro::executor, wait);
      co_await timer.async_wait(asio::bind_cancellation_slot(shutdown.signal.slot(), use_tuple));
      shutdown.signal.slot().clear();
      ex.waiting += Clock::now() - slept;
    }
  }
  co_return out;
}

}  // namespace turnout::server
