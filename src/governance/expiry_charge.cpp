#include "governance/expiry_charge.hpp"

#include <fmt/format.h>

#include <array>
#include <string>

namespace turnout::governance {

std::string expired_filter(const std::vector<std::string>& scopes, std::int64_t now_ms, std::vector<SqlParam>& params) {
  params.emplace_back(std::to_string(now_ms));
  std::string filter = fmt::format("expires_at_ms <= ${}", params.size());
  if (scopes.empty()) return filter;
  filter += " AND (";
  for (std::size_t i = 0; i < scopes.size(); ++i) {
    if (i > 0) filter += " OR ";
    params.emplace_back(scopes[i]);
    filter += fmt::format("key_scope = ${0} OR team_scope = ${0}", params.size());
  }
  return filter + ")";
}

ledger::SettledHold expired_reservation(const SqlRow& row) {
  ledger::SettledHold reservation;
  reservation.key_scope = row[0].value_or("");
  reservation.key_period_ms = sql_integer(row[1]);
  reservation.team_scope = row[2];
  if (row[3]) reservation.team_period_ms = sql_integer(row[3]);
  reservation.amount_pico = sql_integer(row[4]);
  return reservation;
}

Result<void> apply_expiry_deltas(SqlSession& session, const ledger::BudgetDeltas& deltas) {
  for (const auto& [budget, delta] : deltas) {
    const std::array<SqlParam, 6> update{std::to_string(delta.spent_pico),   std::to_string(delta.held_pico),
                                         std::to_string(delta.expired_pico), budget.first,
                                         std::to_string(budget.second),      std::to_string(delta.expired_holds)};
    auto done = session.run(
        "UPDATE gov_budgets SET spent_pico = spent_pico + $1, held_pico = held_pico + $2, "
        "expired_pico = expired_pico + $3, expired_holds = expired_holds + $6 "
        "WHERE scope = $4 AND period_start_ms = $5",
        update);
    if (!done) return done.error();
  }
  return {};
}

}  // namespace turnout::governance
