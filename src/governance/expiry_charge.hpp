#pragma once
// Charging expired reservations (store.hpp sweep and sweep_leases): a hold or lease whose
// replica never settled it is deleted and its amount moved from held to spent and
// expired on its key's and team's budget rows, as the ledger writer would settle it.
#include "common/result.hpp"
#include "governance/sql_session.hpp"
#include "ledger/hold_settlement.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace turnout::governance {

// The columns every sweep's DELETE returns, in this order (the amount's column named by
// the table: amount_pico for holds, reserved_pico for leases).
inline constexpr const char* kExpiredColumns = "key_scope, key_period_ms, team_scope, team_period_ms";

// "expires_at_ms <= $1 AND (key_scope = $2 OR team_scope = $2 ...)": the expired holds or
// leases of `scopes` (every scope when empty), with $1 .. as `params` (appended to).
std::string expired_filter(const std::vector<std::string>& scopes, std::int64_t now_ms, std::vector<SqlParam>& params);

// A row of "DELETE ... RETURNING <kExpiredColumns>, <amount>" as the reservation it deleted.
ledger::SettledHold expired_reservation(const SqlRow& row);

// Adds each budget row's delta (spent, held, expired amount and count): one UPDATE a row.
Result<void> apply_expiry_deltas(SqlSession& session, const ledger::BudgetDeltas& deltas);

}  // namespace turnout::governance
