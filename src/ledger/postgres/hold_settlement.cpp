#include "ledger/postgres/hold_settlement.hpp"

#include <array>
#include <unordered_map>

namespace turnout::ledger::pg {
namespace {

constexpr const char* kLockBudgetsSql = R"sql(
  SELECT 1 FROM gov_budgets WHERE (scope, period_start_ms) IN (
    SELECT key_scope, key_period_ms FROM gov_holds WHERE id = ANY($1::text[])
    UNION SELECT team_scope, team_period_ms FROM gov_holds WHERE id = ANY($1::text[]) AND team_scope IS NOT NULL)
  ORDER BY scope, period_start_ms FOR UPDATE
)sql";

constexpr const char* kDeleteHoldsSql =
    "DELETE FROM gov_holds WHERE id = ANY($1::text[]) "
    "RETURNING id, key_scope, key_period_ms, team_scope, team_period_ms, amount_pico, tokens, rate_window_ms";

constexpr const char* kApplyDeltaSql =
    "UPDATE gov_budgets SET spent_pico = spent_pico + $1, held_pico = held_pico + $2, "
    "expired_pico = expired_pico + $3, expired_holds = expired_holds + $6, overruns = overruns + $7, "
    "overrun_pico = overrun_pico + $8 WHERE scope = $4 AND period_start_ms = $5";

std::string array_literal(const std::vector<HoldCharge>& charges) {
  std::string out = "{";
  for (const HoldCharge& charge : charges) {
    if (out.size() > 1) out += ',';
    out += charge.hold_id;
  }
  out += '}';
  return out;
}

}  // namespace

turnout::Result<void> settle_holds(Connection& connection, const std::vector<HoldCharge>& charges, bool expired) {
  if (charges.empty()) return {};
  const std::array<Param, 1> ids{array_literal(charges)};
  if (auto locked = connection.query(kLockBudgetsSql, ids); !locked) return locked.error();
  auto deleted = connection.query(kDeleteHoldsSql, ids);
  if (!deleted) return deleted.error();
  std::unordered_map<std::string_view, const HoldCharge*> charged;
  for (const HoldCharge& charge : charges) charged.emplace(charge.hold_id, &charge);
  BudgetDeltas deltas;
  TokenDeltas tokens;
  for (int row = 0; row < deleted->rows(); ++row) {
    SettledHold hold;
    hold.key_scope = std::string(deleted->text(row, 1));
    auto key_period = deleted->integer(row, 2);
    auto amount = deleted->integer(row, 5);
    if (!key_period) return key_period.error();
    if (!amount) return amount.error();
    hold.key_period_ms = *key_period;
    hold.amount_pico = *amount;
    if (!deleted->is_null(row, 3)) {
      hold.team_scope = std::string(deleted->text(row, 3));
      auto team_period = deleted->integer(row, 4);
      if (!team_period) return team_period.error();
      hold.team_period_ms = *team_period;
    }
    auto reserved = deleted->integer(row, 6);
    if (!reserved) return reserved.error();
    hold.tokens = *reserved;
    if (!deleted->is_null(row, 7)) {
      auto window = deleted->integer(row, 7);
      if (!window) return window.error();
      hold.rate_window_ms = *window;
    }
    const auto found = charged.find(deleted->text(row, 0));
    const std::int64_t cost = found == charged.end() ? 0 : found->second->charged_pico;
    add_settlement(deltas, hold, expired ? hold.amount_pico : cost, expired);
    if (!expired) add_token_settlement(tokens, hold, found == charged.end() ? 0 : found->second->tokens);
  }
  for (const auto& [budget, delta] : deltas) {
    const std::array<Param, 8> params{std::to_string(delta.spent_pico),   std::to_string(delta.held_pico),
                                      std::to_string(delta.expired_pico), budget.first,
                                      std::to_string(budget.second),      std::to_string(delta.expired_holds),
                                      std::to_string(delta.overruns),     std::to_string(delta.overrun_pico)};
    if (auto applied = connection.query(kApplyDeltaSql, params); !applied) return applied.error();
  }
  for (const auto& [window, delta] : tokens) {
    const std::array<Param, 3> params{std::to_string(delta), window.first, std::to_string(window.second)};
    if (auto applied = connection.query(kApplyTokenDeltaSql, params); !applied) return applied.error();
  }
  return {};
}

}  // namespace turnout::ledger::pg
