#pragma once
// The buffered half of a forwarded call, shared by the chat, embeddings and Responses
// endpoints: given the plan, refuse while the ledger is down or the shutdown grace is over,
// run the attempts, meter the answer, record it under its endpoint, add
// cost_usd/latency_ms and the x-turnout-* headers. An answer whose record is not durable
// is withheld (503 ledger_unavailable), never acknowledged.
#include "metering/usage.hpp"
#include "routing/router.hpp"
#include "server/attempts.hpp"
#include "server/call_plan.hpp"
#include "server/services.hpp"

#include <boost/asio/awaitable.hpp>
#include <simdjson.h>

#include <functional>
#include <optional>
#include <string_view>
#include <variant>

namespace turnout::server::endpoints {

// Reads the usage of a successful upstream body; nullopt when the body is not the expected
// object (the call then fails with 502 upstream_malformed).
// `prompt_tokens` is the served model's prompt count, taken only if the meter asks.
using MeterAnswer = std::function<std::optional<metering::MeteredUsage>(
    simdjson::dom::element root, const routing::Candidate& served, const metering::PromptCount& prompt_tokens)>;

struct ForwardedCall {
  std::string_view endpoint;  // ledger::k*Endpoint
  std::string_view answer_kind;  // for the malformed-answer message, e.g. "embeddings list"
  MeterAnswer meter;
};

// The opening every forwarded endpoint shares: nullopt when the call was planned, else the
// answer to its error (counted in /metrics as a rejection, its code kept for the access
// log, and `route_span` failed with it).
std::optional<HttpResponse> refuse_unplanned(Services& services, Call& call,
                                             const std::variant<CallPlan, ApiError>& planned,
                                             std::size_t route_span = tracing::CallTrace::kNone);

// The last step before the upstream: the refusal of a call that must not reach it now
// (503 ledger_unavailable while the ledger cannot record, 503 shutdown once the shutdown
// grace has ended), then, for a virtual key, admission (src/admit: allow-lists and the
// budget hold; its hold id and limit headers go on the exchange, and the call's record
// settles the hold). Refusals are counted in /metrics as rejections.
boost::asio::awaitable<std::optional<HttpResponse>> admit_before_upstream(Services& services, Call& call,
                                                                           const CallPlan& plan);

boost::asio::awaitable<HttpResponse> forward_buffered(Services& services, Call& call, const CallPlan& plan,
                                                      double arrived_unix, const ForwardedCall& kind);

// The second half, for attempts already made: meter, record, answer.
boost::asio::awaitable<HttpResponse> finish_buffered(Services& services, Call& call, const CallPlan& plan,
                                                     CallOutcome& outcome, double arrived_unix,
                                                     const ForwardedCall& kind);

// Counts the call in flight for /metrics while it lives.
class InflightCall {
 public:
  explicit InflightCall(Services& services);
  ~InflightCall();
  InflightCall(const InflightCall&) = delete;
  InflightCall& operator=(const InflightCall&) = delete;

 private:
  Services& services_;
};

}  // namespace turnout::server::endpoints
