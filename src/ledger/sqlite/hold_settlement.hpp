#pragma once
// Settling governance holds on SQLite (ledger/hold_settlement.hpp), inside the caller's
// transaction.
#include "common/result.hpp"
#include "ledger/hold_settlement.hpp"
#include "ledger/sqlite/db.hpp"

#include <cstdint>
#include <string_view>
#include <vector>

namespace turnout::ledger::sqlite {

struct HoldCharge {
  std::string_view hold_id;
  std::int64_t charged_pico = 0;
  std::int64_t tokens = 0;  // the call's actual tokens (prompt + completion)
};

// Deletes each hold that still exists, adding its settlement to `deltas`, and settles the
// tokens it reserved in its rate windows (gov_rates) to the call's actual tokens.
Result<void> delete_holds(Database& db, const std::vector<HoldCharge>& charges, bool expired, BudgetDeltas& deltas);

// Applies `deltas` to gov_budgets, in key order.
Result<void> apply_budget_deltas(Database& db, const BudgetDeltas& deltas);

}  // namespace turnout::ledger::sqlite
