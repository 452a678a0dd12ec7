#include "server/call_tracing.hpp"

#include <chrono>

namespace turnout::server {

std::string_view gen_ai_operation_name(std::string_view operation) {
  return operation == kEmbeddingsOperation ? "embeddings" : "chat";
}

boost::asio::awaitable<std::optional<HttpResponse>> serve_traced(Services& services, Call& call,
                                                                 std::string_view operation, CallHandler serve) {
  if (!services.tracer) co_return co_await serve(services, call);  // tracing off: this branch only
  begin_call_trace(services, call, operation);
  auto answered = co_await serve(services, call);
  finish_call_trace(services, call, answered ? answered->result_int() : call.exchange.stream_status);
  co_return answered;
}

void trace_plan(tracing::CallTrace& trace, const CallPlan& plan, std::size_t route_span) {
  if (!trace.sampled()) return;
  trace.set(0, "gen_ai.request.model", plan.requested_model.empty() ? std::string("auto") : plan.requested_model);
  trace.set(route_span, "turnout.route", plan.decision.primary.route);
  trace.set(route_span, "turnout.model", plan.decision.primary.model);
  trace.set(route_span, "turnout.prompt_tokens", static_cast<std::int64_t>(plan.decision.routing_prompt_tokens));
}

void begin_call_trace(const Services& services, Call& call, std::string_view operation) {
  const Exchange& ex = call.exchange;
  const auto parent = tracing::parse_traceparent(call.request["traceparent"]);
  // The root began when the request arrived: ex.start, on the steady clock, mapped to now.
  const auto age = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - ex.start).count();
  call.exchange.trace.begin(parent, services.trace_sample_ratio, call.worker.rng,
                            std::string(ex.method) + " " + std::string(ex.path), tracing::unix_now_ns() - age);
  tracing::CallTrace& trace = call.exchange.trace;
  trace.set(0, "http.request.method", std::string(ex.method));
  trace.set(0, "url.path", std::string(ex.path));
  trace.set(0, "gen_ai.operation.name", std::string(gen_ai_operation_name(operation)));
  trace.set(0, "turnout.request_id", ex.request_id);
}

void finish_call_trace(Services& services, Call& call, unsigned status) {
  Exchange& ex = call.exchange;
  tracing::CallTrace& trace = ex.trace;
  if (!trace.sampled()) {
    trace.take();
    return;
  }
  trace.set(0, "http.response.status_code", static_cast<std::int64_t>(status));
  if (!ex.model.empty()) trace.set(0, "gen_ai.response.model", ex.model);
  if (!ex.route.empty()) trace.set(0, "turnout.route", ex.route);
  trace.set(0, "gen_ai.usage.input_tokens", static_cast<std::int64_t>(ex.prompt_tokens));
  trace.set(0, "gen_ai.usage.output_tokens", static_cast<std::int64_t>(ex.completion_tokens));
  if (ex.cost) trace.set(0, "turnout.cost_usd", pricing::format_usd(*ex.cost));  // exact, as a decimal string
  trace.set(0, "turnout.attempts", static_cast<std::int64_t>(ex.attempts));
  if (!ex.key_id.empty()) trace.set(0, "turnout.client_key_id", ex.key_id);
  if (!ex.error_type.empty()) {
    trace.set(0, "error.type", ex.error_type);
    if (status >= 500) trace.fail(0, ex.error_type);
  }
  services.tracer->submit(trace.take());
}

}  // namespace turnout::server
