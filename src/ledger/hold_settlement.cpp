#include "ledger/hold_settlement.hpp"

namespace turnout::ledger {
namespace {

void add_to(BudgetDeltas& deltas, const std::string& scope, std::int64_t period_ms, std::int64_t amount_pico,
            std::int64_t charged_pico, bool expired) {
  BudgetDelta& delta = deltas[{scope, period_ms}];
  delta.held_pico -= amount_pico;
  delta.spent_pico += charged_pico;
  if (expired) delta.expired_pico += charged_pico;
}

}  // namespace

void add_settlement(BudgetDeltas& deltas, const SettledHold& hold, std::int64_t charged_pico, bool expired) {
  add_to(deltas, hold.key_scope, hold.key_period_ms, hold.amount_pico, charged_pico, expired);
  if (hold.team_scope && hold.team_period_ms) {
    add_to(deltas, *hold.team_scope, *hold.team_period_ms, hold.amount_pico, charged_pico, expired);
  }
}

}  // namespace turnout::ledger
