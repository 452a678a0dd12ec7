#include "ledger/sqlite/hold_settlement.hpp"

#include <map>

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

// Lease mode: each lease's calls of this batch, their costs summed, out of what it reserves.
Result<void> settle_leases(Database& db, const std::map<std::string_view, std::int64_t>& charged, BudgetDeltas& deltas) {
  if (charged.empty()) return {};
  auto read = db.prepare(
      "SELECT key_scope, key_period_ms, team_scope, team_period_ms, reserved_pico FROM gov_leases WHERE id = ?1");
  if (!read) return read.error();
  auto shrink = db.prepare("UPDATE gov_leases SET reserved_pico = reserved_pico - ?2 WHERE id = ?1");
  if (!shrink) return shrink.error();
  for (const auto& [lease_id, cost] : charged) {
    read->reset();
    read->bind(1, lease_id);
    auto row = read->step();
    if (!row) return row.error();
    if (!*row) continue;  // expired and charged in full already
    SettledHold lease;
    lease.key_scope = read->column_text(0);
    lease.key_period_ms = read->column_int(1);
    if (!read->is_null(2)) lease.team_scope = read->column_text(2);
    lease.team_period_ms = read->column_optional_int(3);
    lease.amount_pico = read->column_int(4);
    read->reset();
    const std::int64_t released = add_lease_settlement(deltas, lease, cost);
    shrink->reset();
    shrink->bind(1, lease_id);
    shrink->bind(2, released);
    if (auto done = shrink->step(); !done) return done.error();
  }
  read->reset();
  read->clear_bindings();
  shrink->reset();
  shrink->clear_bindings();
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
  std::map<std::string_view, std::int64_t> lease_charges;
  for (const HoldCharge& charge : charges) {
    if (const auto lease = lease_of_hold(charge.hold_id)) {
      if (!expired) lease_charges[*lease] += charge.charged_pico;
      continue;
    }
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
  if (auto settled = settle_leases(db, lease_charges, deltas); !settled) return settled.error();
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
