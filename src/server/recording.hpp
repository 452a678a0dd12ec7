#pragma once
// The ledger stage seen from a request: append the call's record and resume once the
// writer reports it durable (committed, or spooled) or failed, so a response is sent only
// after its record is durable; one that is not (held only in memory) must not be
// acknowledged.
#include "server/openai_error.hpp"
#include "server/services.hpp"

#include <boost/asio/awaitable.hpp>

namespace turnout::server {

// True once the record is durable; false (after logging the ledger error against the
// request id) when it is not. Never throws. The record goes through the thread's
// LedgerOutbox (one hand-off per turn of the loop).
boost::asio::awaitable<bool> record_durably(Services& services, WorkerState& worker, Exchange& exchange,
                                            ledger::CallRecord record);

// What the client gets instead of an answer whose record is not durable: 503
// `ledger_unavailable`.
ApiError not_recorded_error();

}  // namespace turnout::server
