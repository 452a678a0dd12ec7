#pragma once
// Relays an upstream server-sent-event stream to the client as it arrives, for any
// endpoint: the dialect reads each event (chat chunks, Responses typed events), the relay
// does the rest — headers, SSE framing with a bound on one event (SseFramer), the
// client-disconnect watch (cancels the upstream call), the shutdown grace, failures
// midway, and the end: the record is committed first, and the stream's last event (chat
// `[DONE]`, Responses `response.completed`) is sent only once the record is durable;
// otherwise, or for a stream that failed midway, an error event ends it instead, so a cut
// or unrecorded answer never looks complete.
#include "metering/usage.hpp"
#include "server/attempts.hpp"
#include "server/call_plan.hpp"
#include "server/openai_error.hpp"
#include "server/services.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::server::endpoints {

class StreamDialect {
 public:
  virtual ~StreamDialect() = default;
  // One complete upstream event: appends what the client gets now to `out`. What the
  // model produced is metered as it passes (never kept whole).
  virtual void on_event(std::string_view event, std::string& out) = 0;
  // The upstream's final event has been seen (and held back for tail()).
  virtual bool finished() const = 0;
  // The stream failed (malformed event, upstream error event); set by on_event or fail().
  virtual const std::optional<ApiError>& error() const = 0;
  virtual void fail(ApiError error) = 0;
  // What to bill once the stream is over (`prompt_tokens`: the gateway's prompt count,
  // taken only if asked).
  virtual metering::MeteredUsage usage(const metering::PromptCount& prompt_tokens) const = 0;
  // The bytes sent after the record is durable: the held-back final event with the call's
  // cost, or the error event of a failed stream ("" when the upstream sent its own).
  virtual std::string tail(const std::optional<pricing::Money>& cost) const = 0;
};

// Writes the response itself; fills `record` (usage, cost, status, error, timings) and
// commits it to the ledger before tail() is sent.
boost::asio::awaitable<void> relay_stream(Services& services, Call& call, const CallPlan& plan, CallOutcome& outcome,
                                          ledger::CallRecord& record, StreamDialect& dialect);

}  // namespace turnout::server::endpoints
