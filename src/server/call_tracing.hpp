#pragma once
// A forwarded call's trace (docs/REFERENCE.md §3.9 Traces): chat, Responses and embeddings
// alike. Its root server span begins when the handler starts, continuing the client's W3C
// traceparent when there is one, and the finished trace (count, route, each upstream
// attempt, ledger commit beneath it) goes to the exporter's queue when the call has
// answered. With tracing off none of this runs.
#include "server/call_plan.hpp"
#include "server/services.hpp"

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string_view>

namespace turnout::server {

// The GenAI semantic conventions' gen_ai.operation.name of an upstream operation:
// "embeddings" for /embeddings, "chat" for chat completions and the Responses API.
std::string_view gen_ai_operation_name(std::string_view operation);

using CallHandler = boost::asio::awaitable<std::optional<HttpResponse>> (*)(Services&, Call&);

// Runs `serve` inside the call's trace when tracing is on (`operation` as in CallPlan),
// else just runs it.
boost::asio::awaitable<std::optional<HttpResponse>> serve_traced(Services& services, Call& call,
                                                                 std::string_view operation, CallHandler serve);

// The route span's outcome and the root's requested model, once the call is planned.
void trace_plan(tracing::CallTrace& trace, const CallPlan& plan, std::size_t route_span);

void begin_call_trace(const Services& services, Call& call, std::string_view operation);

// Sets the root span's outcome (status, models, usage, cost) and queues the trace.
void finish_call_trace(Services& services, Call& call, unsigned status);

}  // namespace turnout::server
