#pragma once
// Relays an upstream server-sent-event stream to the client as it arrives, for any
// endpoint: the dialect reads each event (chat chunks, Responses typed events), the relay
// does the rest — headers, client-disconnect watch (cancels the upstream call), failures
// midway, metering, the ledger commit before the stream's last event, and that last event
// (chat `[DONE]`, Responses `response.completed`) or, for a stream that failed midway, an
// error event instead, so a cut answer never looks complete.
#include "metering/usage.hpp"
#include "server/attempts.hpp"
#include "server/call_plan.hpp"
#include "server/openai_error.hpp"
#include "server/services.hpp"

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace turnout::server::endpoints {

class StreamDialect {
 public:
  virtual ~StreamDialect() = default;
  // One complete upstream event: appends what the client gets now to `out`.
  virtual void on_event(std::string_view event, std::string& out) = 0;
  // The upstream's final event has been seen (and held back for tail()).
  virtual bool finished() const = 0;
  // The stream failed (malformed event, upstream error event); set by on_event or fail().
  virtual const std::optional<ApiError>& error() const = 0;
  virtual void fail(ApiError error) = 0;
  // What to bill once the stream is over.
  virtual metering::MeteredUsage usage(const routing::Candidate& served) const = 0;
  // The bytes sent after the ledger commit: the held-back final event with the call's
  // cost, or the error event of a failed stream ("" when the upstream sent its own).
  virtual std::string tail(const std::optional<pricing::Money>& cost) const = 0;
};

// Writes the response itself; fills `record` (usage, cost, status, error, timings) and
// commits it to the ledger before tail() is sent.
boost::asio::awaitable<void> relay_stream(Services& services, Call& call, const CallPlan& plan, CallOutcome& outcome,
                                          ledger::CallRecord& record, StreamDialect& dialect);

}  // namespace turnout::server::endpoints
