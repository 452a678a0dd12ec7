#include "ledger/postgres/hold_settlement.hpp"

#include <array>
#include <map>
#include <unordered_map>

namespace turnout::ledger::pg {
namespace {

constexpr const char* kLockBudgetsSql = R"sql(
  SELECT 1 FROM gov_budgets WHERE (scope, period_start_ms) IN (
    SELECT key_scope, key_period_ms FROM gov_holds WHERE id = ANY($1::text[])
    UNION SELECT team_scope, team_period_ms FROM gov_holds WHERE id = ANY($1::text[]) AND team_scope IS NOT NULL
    UNION SELECT key_scope, key_period_ms FROM gov_leases WHERE id = ANY($2::text[])
    UNION SELECT team_scope, team_period_ms FROM gov_leases WHERE id = ANY($2::text[]) AND team_scope IS NOT NULL)
  ORDER BY scope, period_start_ms FOR UPDATE
)sql";

// Lease mode: the leases of this batch's calls, after their budget rows (locked above).
constexpr const char* kLockLeasesSql =
    "SELECT id, key_scope, key_period_ms, team_scope, team_period_ms, reserved_pico FROM gov_leases "
    "WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE";
constexpr const char* kShrinkLeaseSql = "UPDATE gov_leases SET reserved_pico = reserved_pico - $2 WHERE id = $1";

constexpr const char* kDeleteHoldsSql =
    "DELETE FROM gov_holds WHERE id = ANY($1::text[]) "
    "RETURNING id, key_scope, key_period_ms, team_scope, team_period_ms, amount_pico, tokens, rate_window_ms";

constexpr const char* kApplyDeltaSql =
    "UPDATE gov_budgets SET spent_pico = spent_pico + $1, held_pico = held_pico + $2, "
    "expired_pico = expired_pico + $3, expired_holds = expired_holds + $6, overruns = overruns + $7, "
    "overrun_pico = overrun_pico + $8 WHERE scope = $4 AND period_start_ms = $5";

// Ids are hexadecimal (leases: the part after "lease-"), so safe in an array literal.
template <class Ids, class Id>
std::string array_literal(const Ids& ids, Id id_of) {
  std::string out = "{";
  for (const auto& item : ids) {
    if (out.size() > 1) out += ',';
    out += id_of(item);
  }
  out += '}';
  return out;
}

// Each lease's calls of this batch, their costs summed, out of what it reserves.
turnout::Result<void> settle_leases(Connection& connection, const std::map<std::string, std::int64_t>& charged,
                                    const std::string& lease_ids, BudgetDeltas& deltas) {
  if (charged.empty()) return {};
  auto leases = connection.query(kLockLeasesSql, std::array<Param, 1>{lease_ids});
  if (!leases) return leases.error();
  for (int row = 0; row < leases->rows(); ++row) {
    const auto found = charged.find(std::string(leases->text(row, 0)));
    if (found == charged.end()) continue;
    SettledHold lease;
    lease.key_scope = std::string(leases->text(row, 1));
    auto key_period = leases->integer(row, 2);
    auto reserved = leases->integer(row, 5);
    if (!key_period) return key_period.error();
    if (!reserved) return reserved.error();
    lease.key_period_ms = *key_period;
    lease.amount_pico = *reserved;
    if (!leases->is_null(row, 3)) {
      lease.team_scope = std::string(leases->text(row, 3));
      auto team_period = leases->integer(row, 4);
      if (!team_period) return team_period.error();
      lease.team_period_ms = *team_period;
    }
    const std::int64_t released = add_lease_settlement(deltas, lease, found->second);
    const std::array<Param, 2> params{found->first, std::to_string(released)};
    if (auto shrunk = connection.query(kShrinkLeaseSql, params); !shrunk) return shrunk.error();
  }
  return {};
}

}  // namespace

turnout::Result<void> settle_holds(Connection& connection, const std::vector<HoldCharge>& charges, bool expired) {
  if (charges.empty()) return {};
  std::vector<const HoldCharge*> holds;
  std::map<std::string, std::int64_t> lease_charges;  // lease id -> the costs of its calls
  for (const HoldCharge& charge : charges) {
    if (const auto lease = lease_of_hold(charge.hold_id)) {
      if (!expired) lease_charges[std::string(*lease)] += charge.charged_pico;
    } else {
      holds.push_back(&charge);
    }
  }
  const std::array<Param, 1> ids{array_literal(holds, [](const HoldCharge* charge) { return charge->hold_id; })};
  const std::string lease_ids = array_literal(lease_charges, [](const auto& entry) { return entry.first; });
  if (auto locked = connection.query(kLockBudgetsSql, std::array<Param, 2>{ids[0], lease_ids}); !locked)
    return locked.error();
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
  if (auto settled = settle_leases(connection, lease_charges, lease_ids, deltas); !settled) return settled.error();
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
