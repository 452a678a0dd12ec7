#pragma once
// A chat call's trace (docs/REFERENCE.md §3.9 Traces): its root server span begins when
// the handler starts, continuing the client's W3C traceparent when there is one, and the
// finished trace (count, route, each upstream attempt, ledger commit beneath it) goes to
// the exporter's queue when the call has answered. With tracing off neither is called.
#include "server/services.hpp"

namespace turnout::server {

void begin_call_trace(const Services& services, Call& call);

// Sets the root span's outcome (status, models, usage, cost) and queues the trace.
void finish_call_trace(Services& services, Call& call, unsigned status);

}  // namespace turnout::server
