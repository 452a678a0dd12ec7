#pragma once
// The ledger stage seen from a request: append the call's record and resume once the
// writer reports it durable (or failed), so a response is sent only after its record is
// committed.
#include "server/services.hpp"

#include <boost/asio/awaitable.hpp>

namespace turnout::server {

// Logs a ledger error against the request id; never throws.
boost::asio::awaitable<void> record_durably(Services& services, const Exchange& exchange, ledger::CallRecord record);

}  // namespace turnout::server
