#pragma once
// Governance state in the ledger database: teams, virtual keys, budget rows, holds and
// the audit trail. One connection, used under a mutex, so the gateway's threads may share
// one store; every call is blocking (run it off the event loop).
#include "common/result.hpp"
#include "governance/records.hpp"
#include "governance/sql_session.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace turnout::governance {

// Why a store call failed: the caller's mistake (bad field, unknown id) or the database.
enum class FailureKind { invalid, not_found, conflict, database };

struct StoreError {
  FailureKind kind = FailureKind::database;
  std::string message;  // names the field or id; never a secret
};

template <class T>
using StoreResult = Result<T, StoreError>;

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
  bool budgeted = true;  // false: no budget applies, only requests are counted (no hold row)
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

// Requests in the current one-minute window of the scope whose rpm leaves the least room.
struct RequestWindow {
  std::string scope;
  std::uint64_t limit = 0;
  std::uint64_t used = 0;  // before this request
  std::int64_t window_end_ms = 0;
};

struct HoldOutcome {
  std::optional<BudgetShortfall> refused;  // none: the hold is taken
  // A scope's rpm is used up: nothing is held or counted. Checked before the budget.
  std::optional<RequestWindow> rate_refused;
  // The tightest rpm window as it stands after this request (or, refused, before it);
  // none without an rpm.
  std::optional<RequestWindow> requests;
  // The smallest remaining budget over the budgeted scopes, after this hold (or, refused,
  // as it stands); none without a budget.
  std::optional<std::int64_t> remaining_pico;
};

class GovernanceStore {
 public:
  explicit GovernanceStore(std::unique_ptr<SqlSession> session) : session_(std::move(session)) {}
  static Result<std::unique_ptr<GovernanceStore>> open(const std::string& ledger_url);

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
  // transaction, counts the request against the key's and the team's rpm (a fixed
  // one-minute window per scope) and takes the hold against their budget rows, all or
  // nothing, rows locked in (table, scope, period) order.
  StoreResult<HoldOutcome> hold(const HoldRequest& request);

  // Charges every hold that expired before now_ms in full; returns how many.
  StoreResult<std::uint64_t> sweep_expired(std::int64_t now_ms);

 private:
  StoreResult<std::optional<TeamRecord>> load_team(const std::string& id);
  StoreResult<std::optional<KeyRecord>> load_key(const std::string& id);
  StoreResult<void> audit(const std::string& actor, std::string_view action, const std::string& target,
                          const std::optional<std::string>& before, const std::optional<std::string>& after,
                          std::int64_t now_ms);
  StoreResult<void> write_key(const KeyRecord& key, bool insert);
  StoreResult<void> write_team(const TeamRecord& team, bool insert);
  StoreResult<void> sweep(const std::vector<std::string>& scopes, std::int64_t now_ms);
  // The tightest rpm window of the request's scopes, locked; rate_refused when one is full.
  StoreResult<void> check_requests(const HoldRequest& request, HoldOutcome& outcome,
                                   std::vector<std::string>& counted_scopes);
  // Budget rows: created, locked, swept and checked (outcome.refused, remaining_pico).
  StoreResult<void> hold_budgets(const HoldRequest& request, const std::vector<ScopePlan>& plans, HoldOutcome& outcome);
  StoreResult<void> take_hold(const HoldRequest& request, const std::vector<ScopePlan>& plans);
  StoreResult<void> count_requests(const std::vector<std::string>& scopes, std::int64_t window_start_ms);

  std::mutex mutex_;
  std::unique_ptr<SqlSession> session_;
};

}  // namespace turnout::governance
