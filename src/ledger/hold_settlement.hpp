#pragma once
// Settling governance holds (docs/ARCHITECTURE.md "Governance"). A hold is a durable row
// (gov_holds) that reserves an amount against a key's budget row and, for a key in a team,
// the team's, each in the period the hold was taken in. Settling deletes the hold and, per
// budget row, moves the hold's amount out of held_pico and the call's actual cost into
// spent_pico. The ledger writer settles in the same transaction that stores the call's
// record; an expired hold (a replica that died mid-call) is settled at its full amount.
// Deletion is what makes settlement happen exactly once: a hold already gone (swept, or
// a record written twice) changes nothing.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace turnout::ledger {

// A deleted hold, as RETURNING gives it back.
struct SettledHold {
  std::string key_scope;
  std::int64_t key_period_ms = 0;
  std::optional<std::string> team_scope;
  std::optional<std::int64_t> team_period_ms;
  std::int64_t amount_pico = 0;
};

struct BudgetDelta {
  std::int64_t spent_pico = 0;    // added to spent_pico
  std::int64_t held_pico = 0;     // added to held_pico (negative: released)
  std::int64_t expired_pico = 0;  // added to expired_pico (charged by expiry)
};

// Changes per budget row, keyed (scope, period start) and so applied in one fixed order
// by every writer: two transactions that lock the same rows lock them in the same order.
using BudgetDeltas = std::map<std::pair<std::string, std::int64_t>, BudgetDelta>;

// `charged_pico`: the call's actual cost (0 when it has none), or for an expired hold
// its whole amount (`expired` true).
void add_settlement(BudgetDeltas& deltas, const SettledHold& hold, std::int64_t charged_pico, bool expired);

}  // namespace turnout::ledger
