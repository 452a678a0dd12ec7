#pragma once
// Governance state in the ledger database: teams, virtual keys, budget rows, holds and
// the audit trail. One connection, used under a mutex, so the gateway's threads may share
// one store; every call is blocking (run it off the event loop).
#include "common/result.hpp"
#include "governance/records.hpp"
#include "governance/sql_session.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace turnout::governance {

// Why a store call failed: the caller's mistake (bad field, unknown id) or the database.
// commit_unknown: the COMMIT itself failed on a connection that broke, so the transaction
// may stand with its answer lost; every other database failure left nothing written.
enum class FailureKind { invalid, not_found, conflict, database, commit_unknown };

struct StoreError {
  FailureKind kind = FailureKind::database;
  std::string message;  // names the field or id; never a secret
};

template <class T>
using StoreResult = Result<T, StoreError>;

// A statement that failed: the store reports it as a database failure, its message kept.
inline StoreError database_error(const Error& error) { return StoreError{FailureKind::database, error.message}; }

struct CreatedKey {
  KeyRecord record;
  std::string key;  // the whole virtual key: shown once, never stored
};

// Scopes as budget rows name them.
std::string key_scope(std::string_view key_id);
std::string team_scope(std::string_view team_id);

// One budget row a hold touches, with the limit that applies to it (if any).
struct ScopePlan {
  std::string scope;
  PeriodWindow period;
  std::optional<std::int64_t> budget_pico;
};

struct HoldRequest {
  std::string hold_id;  // unique, hexadecimal
  const KeyRecord* key = nullptr;
  const TeamRecord* team = nullptr;  // the key's team, when it has one
  std::int64_t amount_pico = 0;
  // false: no budget, tpm or max_parallel applies, only requests are counted (no hold row)
  bool budgeted = true;
  std::uint64_t tokens = 0;  // reserved against tpm: exact prompt count + maximum output × n
  std::int64_t now_ms = 0;
  std::int64_t expires_at_ms = 0;  // an unsettled hold past this is charged in full
};

// The scope that did not have room.
struct BudgetShortfall {
  std::string scope;  // "key:<id>" or "team:<id>"
  std::int64_t budget_pico = 0;
  std::int64_t used_pico = 0;  // spent + held
  std::int64_t requested_pico = 0;
  PeriodWindow period;
};

// Which rate limit a window measures.
enum class RateKind { requests, tokens, parallel };

// One scope's use of one rate limit: requests or tokens in the current one-minute window
// (the scope whose limit leaves the least room), or its calls in flight (parallel).
struct RequestWindow {
  std::string scope;
  std::uint64_t limit = 0;
  std::uint64_t used = 0;  // before this request
  std::int64_t window_end_ms = 0;
  RateKind kind = RateKind::requests;
  std::uint64_t requested = 1;  // what this request counts against the limit
};

struct HoldOutcome {
  std::optional<BudgetShortfall> refused;  // none: the hold is taken
  // A scope's rpm, tpm or max_parallel has no room: nothing is held or counted. Checked
  // in that order, key before team, and before the budget.
  std::optional<RequestWindow> rate_refused;
  // The tightest rpm window as it stands before this request; none without an rpm.
  std::optional<RequestWindow> requests;
  // The tightest tpm window as it stands before this request; none without a tpm.
  std::optional<RequestWindow> tokens;
  // The smallest remaining budget over the budgeted scopes, after this hold (or, refused,
  // as it stands); none without a budget.
  std::optional<std::int64_t> remaining_pico;
};

// What one scope's holds have done, over all its periods, as the database has it (so the
// same on every replica): live holds, what they hold, holds charged in full by expiry,
// and calls whose actual cost exceeded their hold (overrun; possible only when usage
// outgrows the count, e.g. an upstream's own prompt accounting).
struct ScopeActivity {
  std::string scope;  // "key:<public id>" or "team:<id>"
  std::uint64_t live_holds = 0;
  std::int64_t held_pico = 0;
  std::uint64_t expired_holds = 0;
  std::int64_t expired_pico = 0;
  std::uint64_t overruns = 0;
  std::int64_t overrun_pico = 0;
};

// ---- Lease mode (store_leases.cpp; docs/ARCHITECTURE.md "Leases") ----

// Part of a replica's lease it gives back: `unused_pico` (never more than the lease
// still reserves) leaves the lease and its budget rows' held_pico.
struct LeaseReturn {
  std::string lease_id;
  std::int64_t unused_pico = 0;
  // All this replica has given back of the lease, this part included. Returns are
  // differences; the total makes one re-sent after a lost COMMIT answer a no-op.
  std::int64_t returned_total_pico = 0;
};

struct LeaseRequest {
  std::string lease_id;  // unique, hexadecimal
  const KeyRecord* key = nullptr;
  const TeamRecord* team = nullptr;  // the key's team, when it has one
  std::int64_t needed_pico = 0;      // the call that asks: refused when even this does not fit
  std::int64_t max_slice_pico = 0;   // governance.lease_slice_usd
  std::int64_t now_ms = 0;
  std::int64_t expires_at_ms = 0;  // past this, what the lease still reserves is charged in full
  // The replica's previous lease on this key: its unused part is given back first, in the
  // same transaction, so it counts as room for the new one.
  std::optional<LeaseReturn> previous;
};

struct LeaseGrant {
  std::optional<BudgetShortfall> refused;  // none: the lease is taken
  std::int64_t reserved_pico = 0;          // the slice
  std::optional<std::int64_t> period_end_ms;  // the earliest end of the lease's budget periods
  std::int64_t remaining_pico = 0;  // the least room over the budgeted scopes, after the slice
  // The team the lease counts in: the key's team as stored now (empty: none), which may
  // differ from the caller's cached grant when the key moved team.
  std::string team_id;
  // The key as stored now cannot be used (revoked, expired, gone, or its team expired):
  // why, in invalid_key_refusal's words; nothing is reserved.
  std::optional<std::string> unusable;
};

// How much a lease reserves: a quarter of the least room (so replicas share the tail of a
// budget in shrinking slices), at most `max_slice`, at least the call that asks (`needed`).
// Assumes needed <= room.
std::int64_t lease_slice(std::int64_t needed, std::int64_t room, std::int64_t max_slice);

class GovernanceStore {
 public:
  explicit GovernanceStore(std::unique_ptr<SqlSession> session) : session_(std::move(session)) {}
  static Result<std::unique_ptr<GovernanceStore>> open(
      const std::string& ledger_url, WalCheckpoints checkpoints = WalCheckpoints::by_this_connection);

  StoreResult<TeamRecord> create_team(const std::string& id, const Fields& fields, const std::string& actor,
                                      std::int64_t now_ms);
  StoreResult<TeamRecord> update_team(const std::string& id, const Fields& fields, const std::string& actor,
                                      std::int64_t now_ms);
  StoreResult<std::vector<TeamRecord>> list_teams();
  StoreResult<TeamRecord> find_team(const std::string& id);

  StoreResult<CreatedKey> create_key(const Fields& fields, const std::string& actor, std::int64_t now_ms);
  StoreResult<KeyRecord> update_key(const std::string& id, const Fields& fields, const std::string& actor,
                                    std::int64_t now_ms);
  StoreResult<KeyRecord> revoke_key(const std::string& id, const std::string& actor, std::int64_t now_ms);
  StoreResult<CreatedKey> rotate_key(const std::string& id, const std::string& actor, std::int64_t now_ms);
  StoreResult<std::vector<KeyRecord>> list_keys();
  StoreResult<KeyRecord> find_key(const std::string& id);

  // The scope's budget figures in the period that holds now_ms.
  StoreResult<ScopeUsage> usage(const std::string& scope, const Limits& limits, std::int64_t now_ms);

  // Sweeps the expired holds of the request's scopes (charging them in full), then, in one
  // transaction, counts the request and its reserved tokens against the key's and the
  // team's rpm and tpm (a fixed one-minute window per scope), checks their max_parallel
  // against their live holds, and takes the hold against their budget rows, all or
  // nothing, rows locked in (table, scope, period) order. On PostgreSQL all of it is one
  // statement (turnout_admit): one round trip, no BEGIN/COMMIT.
  StoreResult<HoldOutcome> hold(const HoldRequest& request);

  // Charges every hold that expired before now_ms in full; returns how many.
  StoreResult<std::uint64_t> sweep_expired(std::int64_t now_ms);

  // The scopes with any hold activity, busiest first, at most `max_scopes` of them (a
  // bound on /metrics label sets whatever the number of keys).
  StoreResult<std::vector<ScopeActivity>> activity(std::size_t max_scopes);

  // Lease mode (store_leases.cpp). Takes a lease on the key's and its team's budget rows
  // in one transaction, as a hold is taken: rows created and locked in (scope, period)
  // order, expired holds and leases of the scopes swept, the slice reserved only if the
  // needed amount fits every budget. The key and its team are read again in the
  // transaction: the slice is sized by their limits as stored now, not as the caller's
  // cache read them (a lowered budget is respected, a revoked key gets nothing).
  // FailureKind::commit_unknown: the lease may be stored though the answer was lost.
  StoreResult<LeaseGrant> take_lease(const LeaseRequest& request);
  // Gives back unused parts of leases, one transaction each. Returns how many found no
  // lease row: swept after its expiry (charged already), or taken by a COMMIT whose answer
  // was lost and that the server has not finished yet (or never will): only the caller,
  // knowing the lease's expiry, can tell those apart.
  StoreResult<std::size_t> return_leases(const std::vector<LeaseReturn>& returns);

 private:
  StoreResult<std::optional<TeamRecord>> load_team(const std::string& id);
  StoreResult<std::optional<KeyRecord>> load_key(const std::string& id);
  StoreResult<void> audit(const std::string& actor, std::string_view action, const std::string& target,
                          const std::optional<std::string>& before, const std::optional<std::string>& after,
                          std::int64_t now_ms);
  StoreResult<void> write_key(const KeyRecord& key, bool insert);
  // One admin write on an existing key or team: under the lock, in one transaction, load
  // it (404 when absent), apply `change` (an error refuses the write), check a new team
  // exists, stamp updated_at, write it and its audit row (`audit_records`: with the record
  // before and after), commit.
  StoreResult<KeyRecord> modify_key(const std::string& id, std::string_view action, const std::string& actor,
                                    std::int64_t now_ms, const std::function<StoreResult<void>(KeyRecord&)>& change,
                                    bool audit_records = true);
  StoreResult<TeamRecord> modify_team(const std::string& id, std::string_view action, const std::string& actor,
                                      std::int64_t now_ms, const std::function<StoreResult<void>(TeamRecord&)>& change);
  StoreResult<void> write_team(const TeamRecord& team, bool insert);
  StoreResult<void> sweep(const std::vector<std::string>& scopes, std::int64_t now_ms);
  // The tightest rpm window of the request's scopes, locked; rate_refused when one is full.
  StoreResult<void> check_requests(const HoldRequest& request, HoldOutcome& outcome,
                                   std::vector<std::string>& counted_scopes);
  // Budget rows: created, locked, swept and checked (outcome.refused, remaining_pico).
  StoreResult<void> hold_budgets(const HoldRequest& request, const std::vector<ScopePlan>& plans, HoldOutcome& outcome);
  // `rate_window_ms`: the window the hold's tokens were reserved in (none: none reserved).
  StoreResult<void> take_hold(const HoldRequest& request, const std::vector<ScopePlan>& plans,
                              std::optional<std::int64_t> rate_window_ms);
  StoreResult<void> count_requests(const std::vector<std::string>& scopes, std::int64_t window_start_ms,
                                   std::uint64_t tokens);

  // PostgreSQL: locks `rows` and the budget rows of the expired holds and leases of `scopes`
  // (all, when empty) in one statement, in (scope, period) order, the order every writer
  // uses. The sweeps lock nothing themselves: a second batch taken after a row that sorts
  // later (a team's, then a sibling key's) could deadlock against the ledger writer.
  Result<void> lock_for_sweep(const std::set<std::pair<std::string, std::int64_t>>& rows,
                              const std::vector<std::string>& scopes, std::int64_t now_ms);
  // Lease mode (store_leases.cpp): expired leases of `scopes` (all, when empty) charged what
  // they still reserve; returns how many still reserved anything. Their budget rows are
  // locked first (lock_for_sweep).
  StoreResult<std::uint64_t> sweep_leases(const std::vector<std::string>& scopes, std::int64_t now_ms);
  // One return in the caller's transaction; false: no lease row (see return_leases).
  StoreResult<bool> return_lease(const LeaseReturn& unused);

  std::mutex mutex_;
  std::unique_ptr<SqlSession> session_;
};

}  // namespace turnout::governance
