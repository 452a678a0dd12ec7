#pragma once
// Before /stats and /stats/series read the roll-ups: asks the ledger's writer for a fold
// (Ledger::request_fold) and waits for its answer on the calling coroutine's own
// executor, at most kFoldWaitLimit. No thread waits: a writer stuck on a locked database
// (a backup, another process's transaction) holds no blocking-pool thread, which
// virtual-key lookups and governed admissions need.
#include "ledger/ledger.hpp"
#include "server/services.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>

namespace turnout::server::endpoints {

inline constexpr std::chrono::seconds kFoldWaitLimit{5};

// The writer's answer, or an incomplete outcome naming the timeout.
boost::asio::awaitable<ledger::FoldOutcome> await_fold(Services& services, std::chrono::milliseconds limit = kFoldWaitLimit);

}  // namespace turnout::server::endpoints
