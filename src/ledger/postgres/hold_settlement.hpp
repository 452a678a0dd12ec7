#pragma once
// Settling governance holds on PostgreSQL (ledger/hold_settlement.hpp), inside the
// caller's transaction. The budget rows the holds touch are locked first, in (scope,
// period) order, the same order admission locks them in, so the writer and admitting
// replicas never wait on each other in a cycle.
#include "common/result.hpp"
#include "ledger/hold_settlement.hpp"
#include "ledger/postgres/connection.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace turnout::ledger::pg {

struct HoldCharge {
  std::string hold_id;  // as the gateway made it: hexadecimal, so safe in an array literal
  std::int64_t charged_pico = 0;
  std::int64_t tokens = 0;  // the call's actual tokens (prompt + completion)
};

// Deletes the holds that still exist, charging each `charged_pico` (or, `expired`, its
// whole amount), and applies the changes to gov_budgets, then settles the tokens the holds
// reserved in their rate windows (gov_rates) to the calls' actual tokens: rate rows after
// budget rows, each in key order, as admission locks them.
turnout::Result<void> settle_holds(Connection& connection, const std::vector<HoldCharge>& charges, bool expired);

}  // namespace turnout::ledger::pg
