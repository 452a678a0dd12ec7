// Leases (store.hpp, docs/ARCHITECTURE.md "Leases"): a replica's slice of a key's and its
// team's budget, reserved in the budget rows' held_pico like a hold and spent locally.
#include "governance/expiry_charge.hpp"
#include "governance/store.hpp"
#include "ledger/hold_settlement.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>
#include <set>

namespace turnout::governance {
namespace {

// Slices shrink with the room left, so the last of a budget is shared by the replicas
// rather than stranded in one replica's slice.
constexpr std::int64_t kRoomShareDivisor = 4;

using BudgetRow = std::pair<std::string, std::int64_t>;  // scope, period start

// "SELECT * FROM unnest(ARRAY[$n::text, ...], ARRAY[$m::bigint, ...])": `rows` as one set
// of (scope, period) pairs, passed as parameters (appended to `params`), never quoted into
// a literal. Matched with one `(scope, period_start_ms) IN (...)`, PostgreSQL probes
// gov_budgets' primary key once per row; an OR of pairs can make it scan the table (a row
// per scope per period, growing forever) and lock-test every row.
std::string budget_rows_set(const std::set<BudgetRow>& rows, std::vector<SqlParam>& params) {
  std::string scopes_array;
  std::string periods_array;
  for (const auto& [scope, period] : rows) {
    if (!scopes_array.empty()) {
      scopes_array += ", ";
      periods_array += ", ";
    }
    params.emplace_back(scope);
    scopes_array += fmt::format("${}::text", params.size());
    params.emplace_back(std::to_string(period));
    periods_array += fmt::format("${}::bigint", params.size());
  }
  return fmt::format("SELECT * FROM unnest(ARRAY[{}], ARRAY[{}])", scopes_array, periods_array);
}

// PostgreSQL: locks budget rows in (scope, period) order, the order every writer uses.
Result<void> lock_budget_rows(SqlSession& session, const std::set<BudgetRow>& rows) {
  if (session.engine() != Engine::postgresql || rows.empty()) return {};
  std::vector<SqlParam> params;
  const std::string sql = "SELECT 1 FROM gov_budgets WHERE (scope, period_start_ms) IN (" +
                          budget_rows_set(rows, params) + ") ORDER BY scope, period_start_ms FOR UPDATE";
  auto locked = session.run(sql, params);
  if (!locked) return locked.error();
  return {};
}

// The budget rows a lease counts in, as its row names them.
Result<std::optional<std::set<BudgetRow>>> lease_rows(SqlSession& session, const std::string& lease_id) {
  auto rows = session.run("SELECT key_scope, key_period_ms, team_scope, team_period_ms FROM gov_leases WHERE id = $1",
                          std::array<SqlParam, 1>{lease_id});
  if (!rows) return rows.error();
  if (rows->empty()) return std::optional<std::set<BudgetRow>>();
  const SqlRow& row = rows->front();
  std::set<BudgetRow> budget_rows{{row[0].value_or(""), sql_integer(row[1])}};
  if (row[2]) budget_rows.emplace(*row[2], sql_integer(row[3]));
  return std::optional(std::move(budget_rows));
}

Result<void> add_held(SqlSession& session, const std::set<BudgetRow>& rows, std::int64_t delta_pico) {
  for (const auto& [scope, period] : rows) {
    auto held = session.run("UPDATE gov_budgets SET held_pico = held_pico + $1 WHERE scope = $2 AND period_start_ms = $3",
                            std::array<SqlParam, 3>{std::to_string(delta_pico), scope, std::to_string(period)});
    if (!held) return held.error();
  }
  return {};
}

// Why a key as stored cannot take a lease, in invalid_key_refusal's words; none when it can.
std::optional<std::string> unusable_for_lease(const std::optional<KeyRecord>& key,
                                              const std::optional<TeamRecord>& team, std::int64_t now_ms) {
  if (!key) return "is not valid";
  if (key->revoked_at_ms) return "has been revoked";
  if (key->expires_at_ms && *key->expires_at_ms <= now_ms) return "has expired";
  if (key->team_id && !team) return "is not valid";
  if (team && team->expires_at_ms && *team->expires_at_ms <= now_ms)
    return fmt::format("belongs to team '{}', which has expired", team->id);
  return std::nullopt;
}

}  // namespace

std::int64_t lease_slice(std::int64_t needed, std::int64_t room, std::int64_t max_slice) {
  return std::min(room, std::max(needed, std::min(max_slice, room / kRoomShareDivisor)));
}

StoreResult<bool> GovernanceStore::return_lease(const LeaseReturn& unused) {
  if (unused.unused_pico <= 0) return true;
  auto rows = lease_rows(*session_, unused.lease_id);
  if (!rows) return database_error(rows.error());
  if (!*rows) return false;
  if (auto locked = lock_budget_rows(*session_, **rows); !locked) return database_error(locked.error());
  const bool postgres = session_->engine() == Engine::postgresql;
  auto reserved = session_->run(
      std::string("SELECT reserved_pico, returned_pico FROM gov_leases WHERE id = $1") +
          (postgres ? " FOR UPDATE" : ""),
      std::array<SqlParam, 1>{unused.lease_id});
  if (!reserved) return database_error(reserved.error());
  if (reserved->empty()) return false;
  // What of the replica's total is not applied yet. A return re-sent after its commit went
  // through finds nothing left; a later return overtaking an earlier, failed one also gives
  // back the earlier part (the total covers it), and the earlier one then finds nothing.
  const std::int64_t not_applied = unused.returned_total_pico - sql_integer(reserved->front()[1]);
  if (not_applied <= 0) return true;
  const std::int64_t released_pico = std::clamp<std::int64_t>(not_applied, 0, sql_integer(reserved->front()[0]));
  auto shrunk = session_->run(
      "UPDATE gov_leases SET reserved_pico = reserved_pico - $2, returned_pico = $3 WHERE id = $1",
      std::array<SqlParam, 3>{unused.lease_id, std::to_string(released_pico),
                              std::to_string(unused.returned_total_pico)});
  if (!shrunk) return database_error(shrunk.error());
  if (auto held = add_held(*session_, **rows, -released_pico); !held) return database_error(held.error());
  return true;
}

StoreResult<std::size_t> GovernanceStore::return_leases(const std::vector<LeaseReturn>& returns) {
  std::lock_guard lock(mutex_);
  std::size_t without_lease = 0;
  for (const LeaseReturn& unused : returns) {
    auto transaction = WriteTransaction::begin(*session_);
    if (!transaction) return database_error(transaction.error());
    auto found = return_lease(unused);
    if (!found) return found.error();
    if (auto committed = transaction->commit(); !committed) return database_error(committed.error());
    if (!*found) ++without_lease;
  }
  return without_lease;
}

Result<void> GovernanceStore::lock_for_sweep(const std::set<BudgetRow>& rows, const std::vector<std::string>& scopes,
                                             std::int64_t now_ms) {
  if (session_->engine() != Engine::postgresql) return {};
  std::vector<SqlParam> params;
  const std::string expired = expired_filter(scopes, now_ms, params);
  // One set, one IN (budget_rows_set): an OR beside the IN would make PostgreSQL scan
  // all of gov_budgets and lock-test every row.
  std::string sql = fmt::format(
      "SELECT 1 FROM gov_budgets WHERE (scope, period_start_ms) IN ("
      "SELECT key_scope, key_period_ms FROM gov_holds WHERE {0} UNION "
      "SELECT team_scope, team_period_ms FROM gov_holds WHERE {0} AND team_scope IS NOT NULL UNION "
      "SELECT key_scope, key_period_ms FROM gov_leases WHERE {0} UNION "
      "SELECT team_scope, team_period_ms FROM gov_leases WHERE {0} AND team_scope IS NOT NULL",
      expired);
  if (!rows.empty()) sql += " UNION " + budget_rows_set(rows, params);
  sql += ") ORDER BY scope, period_start_ms FOR UPDATE";
  auto locked = session_->run(sql, params);
  if (!locked) return locked.error();
  return {};
}

StoreResult<std::uint64_t> GovernanceStore::sweep_leases(const std::vector<std::string>& scopes, std::int64_t now_ms) {
  std::vector<SqlParam> params;
  const std::string filter = expired_filter(scopes, now_ms, params);
  auto rows = session_->run(
      fmt::format("DELETE FROM gov_leases WHERE {} RETURNING {}, reserved_pico", filter, kExpiredColumns), params);
  if (!rows) return database_error(rows.error());
  ledger::BudgetDeltas deltas;
  std::uint64_t charged = 0;
  for (const SqlRow& row : *rows) {
    const ledger::SettledHold lease = expired_reservation(row);
    if (lease.amount_pico <= 0) continue;  // given back and settled in full: nothing stranded
    ledger::add_settlement(deltas, lease, lease.amount_pico, true);
    ++charged;
  }
  if (auto charged_rows = apply_expiry_deltas(*session_, deltas); !charged_rows)
    return database_error(charged_rows.error());
  return charged;
}

StoreResult<LeaseGrant> GovernanceStore::take_lease(const LeaseRequest& request) {
  std::lock_guard lock(mutex_);
  auto transaction = WriteTransaction::begin(*session_);
  if (!transaction) return database_error(transaction.error());
  // The key and its team as stored now: a renewal racing an update or a revocation must not
  // reserve a slice against the limits the caller's cache still holds.
  auto key = load_key(request.key->id);
  if (!key) return key.error();
  std::optional<TeamRecord> team;
  if (*key && (*key)->team_id) {
    auto loaded = load_team(*(*key)->team_id);
    if (!loaded) return loaded.error();
    team = std::move(*loaded);
  }
  if (auto why = unusable_for_lease(*key, team, request.now_ms)) {
    LeaseGrant unusable;
    unusable.unusable = std::move(why);
    return unusable;  // nothing written: the transaction rolls back
  }
  std::vector<ScopePlan> plans;  // key before team: "key:" sorts before "team:"
  const auto plan_scope = [&](std::string scope, const Limits& limits) -> StoreResult<void> {
    auto period = period_window(limits.budget_period, limits.timezone, request.now_ms);
    if (!period) return StoreError{FailureKind::invalid, period.error().message};
    plans.push_back(ScopePlan{std::move(scope), *period, limits.budget_pico});
    return {};
  };
  if (auto planned = plan_scope(key_scope((*key)->id), (*key)->limits); !planned) return planned.error();
  if (team) {
    if (auto planned = plan_scope(team_scope(team->id), team->limits); !planned) return planned.error();
  }
  std::set<BudgetRow> rows;
  std::vector<std::string> scopes;
  for (const ScopePlan& plan : plans) {
    rows.emplace(plan.scope, plan.period.start_ms);
    scopes.push_back(plan.scope);
  }
  for (const auto& [scope, period] : rows) {
    auto created = session_->run(
        "INSERT INTO gov_budgets (scope, period_start_ms) VALUES ($1, $2) ON CONFLICT (scope, period_start_ms) DO NOTHING",
        std::array<SqlParam, 2>{scope, std::to_string(period)});
    if (!created) return database_error(created.error());
  }
  // The previous lease's rows may be in an earlier period, and the sweeps below charge the
  // expired holds and leases of sibling keys of the team: all of them are locked with the
  // new ones in one ordered statement, never a second batch after the team's row.
  std::set<BudgetRow> locked_rows = rows;
  if (request.previous) {
    auto previous_rows = lease_rows(*session_, request.previous->lease_id);
    if (!previous_rows) return database_error(previous_rows.error());
    if (*previous_rows) locked_rows.insert((*previous_rows)->begin(), (*previous_rows)->end());
  }
  if (auto locked = lock_for_sweep(locked_rows, scopes, request.now_ms); !locked) return database_error(locked.error());
  if (auto swept = sweep(scopes, request.now_ms); !swept) return swept.error();
  if (auto swept = sweep_leases(scopes, request.now_ms); !swept) return swept.error();
  // The previous lease was stored (this replica spent it): no row means swept, charged.
  if (request.previous) {
    if (auto returned = return_lease(*request.previous); !returned) return returned.error();
  }

  LeaseGrant grant;
  if (team) grant.team_id = team->id;
  std::optional<std::int64_t> least_room;
  for (const ScopePlan& plan : plans) {
    if (plan.period.end_ms)
      grant.period_end_ms = std::min(grant.period_end_ms.value_or(*plan.period.end_ms), *plan.period.end_ms);
    if (!plan.budget_pico) continue;
    auto used = session_->run("SELECT spent_pico, held_pico FROM gov_budgets WHERE scope = $1 AND period_start_ms = $2",
                              std::array<SqlParam, 2>{plan.scope, std::to_string(plan.period.start_ms)});
    if (!used) return database_error(used.error());
    const std::int64_t spent = used->empty() ? 0 : sql_integer(used->front()[0]);
    const std::int64_t held = used->empty() ? 0 : sql_integer(used->front()[1]);
    const std::int64_t room = *plan.budget_pico - spent - held;
    least_room = std::min(least_room.value_or(room), room);
    if (request.needed_pico > room && !grant.refused)
      grant.refused = BudgetShortfall{plan.scope, *plan.budget_pico, spent + held, request.needed_pico, plan.period};
  }
  if (!grant.refused) {
    // Without a budget on either scope nothing needs leasing; the caller does not ask then.
    const std::int64_t room = least_room.value_or(request.max_slice_pico);
    grant.reserved_pico = lease_slice(request.needed_pico, room, request.max_slice_pico);
    grant.remaining_pico = std::max<std::int64_t>(room - grant.reserved_pico, 0);
    const ScopePlan& key_plan = plans.front();
    const ScopePlan* team_plan = plans.size() > 1 ? &plans[1] : nullptr;
    auto inserted = session_->run(
        "INSERT INTO gov_leases (id, key_scope, key_period_ms, team_scope, team_period_ms, reserved_pico, "
        "created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        std::array<SqlParam, 8>{request.lease_id, key_plan.scope, std::to_string(key_plan.period.start_ms),
                                team_plan ? SqlParam(team_plan->scope) : std::nullopt,
                                team_plan ? SqlParam(std::to_string(team_plan->period.start_ms)) : std::nullopt,
                                std::to_string(grant.reserved_pico), std::to_string(request.now_ms),
                                std::to_string(request.expires_at_ms)});
    if (!inserted) return database_error(inserted.error());
    if (auto held = add_held(*session_, rows, grant.reserved_pico); !held) return database_error(held.error());
  } else if (least_room) {
    grant.remaining_pico = std::max<std::int64_t>(*least_room, 0);
  }
  // A refusal commits too: the sweeps and the previous lease's return stand either way.
  if (auto committed = transaction->commit(); !committed) {
    // The connection broke under the COMMIT: the server may have committed before it went.
    if (session_->broken()) return StoreError{FailureKind::commit_unknown, committed.error().message};
    return database_error(committed.error());
  }
  return grant;
}

}  // namespace turnout::governance
