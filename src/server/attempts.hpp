#pragma once
// The upstream stage of a chat call: the routed model and its fallbacks, each tried with
// retries (resilience::RetryPolicy) until one answers with something not worth retrying;
// every attempt's outcome feeds the model cooldowns. Nothing reaches the client before
// the first complete event of a stream, so failures up to there are still retried.
// Each attempt's upstream waits are bound to the connection's shutdown cancellation: when
// the shutdown grace ends, the pending upstream operation is cancelled (its connection
// closed) and the outcome says `cancelled` (no retry, no cooldown).
#include "server/call_plan.hpp"
#include "server/services.hpp"
#include "server/sse.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace turnout::server {

// The result of the attempts (retries and fallbacks) for one call.
struct CallOutcome {
  const routing::Candidate* served = nullptr;  // the model of the last attempt
  std::string route;                           // its route (fallback:<primary> for fallbacks)
  std::optional<upstream::Response> response;  // last complete upstream response, if any
  std::optional<upstream::Failure> failure;    // or the last failure
  std::optional<upstream::ResponseStream> stream;  // streaming: the open upstream stream
  // Streaming: the events read before committing (at least one whole event).
  SseFramer stream_events{kMaxSseEventBytes};
  unsigned retries = 0;
  unsigned fallbacks = 0;
  bool cancelled = false;  // the shutdown grace ended before the upstream answered
  // The last attempt's client span; a stream's stays open until its relay ends.
  std::size_t attempt_span = tracing::CallTrace::kNone;
};

boost::asio::awaitable<CallOutcome> run_attempts(Services& services, Call& call, const CallPlan& plan,
                                                 std::string_view body);

}  // namespace turnout::server
