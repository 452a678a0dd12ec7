#pragma once
// The parts of the Responses endpoint shared by its buffered answer (responses.cpp) and
// its streamed one (responses_stream.cpp).
#include "ledger/ledger.hpp"
#include "server/attempts.hpp"
#include "server/call_plan.hpp"
#include "server/services.hpp"

#include <boost/asio/awaitable.hpp>

namespace turnout::server::endpoints {

// Relays the upstream's typed events, meters usage from response.completed (else counted
// from the deltas), commits the record, then sends response.completed with cost_usd — or,
// for a stream that failed midway, an `error` event (see stream_relay.hpp).
boost::asio::awaitable<void> relay_responses_stream(Services& services, Call& call, const CallPlan& plan,
                                                    CallOutcome& outcome, ledger::CallRecord& rec);

}  // namespace turnout::server::endpoints
