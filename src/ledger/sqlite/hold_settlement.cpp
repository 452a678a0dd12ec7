#include "ledger/sqlite/hold_settlement.hpp"

namespace turnout::ledger::sqlite {
namespace {

Result<void> apply_token_deltas(Database& db, const TokenDeltas& deltas) {
  if (deltas.empty()) return {};
  auto update = db.prepare(kApplyTokenDeltaSql);
  if (!update) return update.error();
  for (const auto& [row, delta] : deltas) {
    update->reset();
    update->bind(1, delta);
    update->bind(2, std::string_view(row.first));
    update->bind(3, row.second);
    if (auto done = update->step(); !done) return done.error();
  }
  update->reset();
  update->clear_bindings();
  return {};
}

}  // namespace

Result<void> delete_holds(Database& db, const std::vector<HoldCharge>& charges, bool expired, BudgetDeltas& deltas) {
  if (charges.empty()) return {};
  auto remove = db.prepare(
      "DELETE FROM gov_holds WHERE id = ?1 "
      "RETURNING key_scope, key_period_ms, team_scope, team_period_ms, amount_pico, tokens, rate_window_ms");
  if (!remove) return remove.error();
  TokenDeltas tokens;
  for (const HoldCharge& charge : charges) {
    remove->reset();
    remove->bind(1, charge.hold_id);
    auto row = remove->step();
    if (!row) return row.error();
    if (!*row) continue;  // settled already (swept after expiry, or this record stored before)
    SettledHold hold;
    hold.key_scope = remove->column_text(0);
    hold.key_period_ms = remove->column_int(1);
    if (!remove->is_null(2)) hold.team_scope = remove->column_text(2);
    hold.team_period_ms = remove->column_optional_int(3);
    hold.amount_pico = remove->column_int(4);
    hold.tokens = remove->column_int(5);
    hold.rate_window_ms = remove->column_optional_int(6);
    add_settlement(deltas, hold, expired ? hold.amount_pico : charge.charged_pico, expired);
    if (!expired) add_token_settlement(tokens, hold, charge.tokens);
    if (auto done = remove->step(); !done) return done.error();  // finishes the statement
  }
  remove->reset();
  remove->clear_bindings();
  return apply_token_deltas(db, tokens);
}

Result<void> apply_budget_deltas(Database& db, const BudgetDeltas& deltas) {
  if (deltas.empty()) return {};
  auto update = db.prepare(
      "UPDATE gov_budgets SET spent_pico = spent_pico + ?1, held_pico = held_pico + ?2, "
      "expired_pico = expired_pico + ?3, expired_holds = expired_holds + ?6, overruns = overruns + ?7, "
      "overrun_pico = overrun_pico + ?8 WHERE scope = ?4 AND period_start_ms = ?5");
  if (!update) return update.error();
  for (const auto& [row, delta] : deltas) {
    update->reset();
    update->bind(1, delta.spent_pico);
    update->bind(2, delta.held_pico);
    update->bind(3, delta.expired_pico);
    update->bind(4, std::string_view(row.first));
    update->bind(5, row.second);
    update->bind(6, delta.expired_holds);
    update->bind(7, delta.overruns);
    update->bind(8, delta.overrun_pico);
    if (auto done = update->step(); !done) return done.error();
  }
  update->reset();
  update->clear_bindings();
  return {};
}

}  // namespace turnout::ledger::sqlite
