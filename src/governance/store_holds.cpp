// Budget rows and holds (store.hpp): taking a hold, sweeping expired ones, usage.
#include "governance/expiry_charge.hpp"
#include "governance/store.hpp"
#include "governance/admit_statement.hpp"
#include "ledger/hold_settlement.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>

namespace turnout::governance {
namespace {

constexpr std::int64_t kRateWindowMs = 60'000;  // rpm counts fixed one-minute windows

}  // namespace

StoreResult<void> GovernanceStore::check_requests(const HoldRequest& request, HoldOutcome& outcome,
                                                  std::vector<std::string>& counted_scopes) {
  const std::int64_t window_start = request.now_ms - request.now_ms % kRateWindowMs;
  struct RatedScope {
    std::string scope;
    const Limits* limits;
    const char* holds_column;  // where this scope's live holds name it
  };
  std::vector<RatedScope> rated;  // key before team: the lock order
  const auto rate_limited = [](const Limits& limits) { return limits.rpm || limits.tpm || limits.max_parallel; };
  if (rate_limited(request.key->limits))
    rated.push_back({key_scope(request.key->id), &request.key->limits, "key_scope"});
  if (request.team != nullptr && rate_limited(request.team->limits))
    rated.push_back({team_scope(request.team->id), &request.team->limits, "team_scope"});
  const auto room = [](const RequestWindow& w) { return w.used >= w.limit ? 0 : w.limit - w.used; };
  const auto tightest = [&](std::optional<RequestWindow>& current, const RequestWindow& window) {
    if (!current || room(window) < room(*current)) current = window;
  };
  // The first full limit of each kind, key before team; rpm, then tpm, then slots win.
  std::array<std::optional<RequestWindow>, 3> full;
  for (const auto& [scope, limits, holds_column] : rated) {
    const std::array<SqlParam, 2> row{scope, std::to_string(window_start)};
    auto created = session_->run(
        "INSERT INTO gov_rates (scope, window_start_ms) VALUES ($1, $2) ON CONFLICT (scope, window_start_ms) DO NOTHING",
        row);
    if (!created) return database_error(created.error());
    // Past windows of this scope are never read again: one row per limited scope remains.
    auto pruned = session_->run("DELETE FROM gov_rates WHERE scope = $1 AND window_start_ms < $2", row);
    if (!pruned) return database_error(pruned.error());
    // SQLite only (BEGIN IMMEDIATE serialises writers); PostgreSQL admits in turnout_admit.
    auto read = session_->run("SELECT requests, tokens FROM gov_rates WHERE scope = $1 AND window_start_ms = $2", row);
    if (!read) return database_error(read.error());
    const auto count = [&](std::size_t column) {
      return read->empty() ? std::uint64_t{0} : sql_count(read->front()[column]);
    };
    const std::int64_t window_end = window_start + kRateWindowMs;
    const auto check = [&](const RequestWindow& window, bool fits) {
      const auto slot = static_cast<std::size_t>(window.kind);
      if (!fits && !full[slot]) full[slot] = window;
    };
    if (limits->rpm) {
      const RequestWindow window{scope, *limits->rpm, count(0), window_end, RateKind::requests, 1};
      check(window, window.used < window.limit);
      tightest(outcome.requests, window);
    }
    if (limits->tpm) {
      const RequestWindow window{scope, *limits->tpm, count(1), window_end, RateKind::tokens, request.tokens};
      check(window, request.tokens <= room(window));
      tightest(outcome.tokens, window);
    }
    if (limits->max_parallel) {
      auto live = session_->run(
          fmt::format("SELECT COUNT(*) FROM gov_holds WHERE {} = $1 AND expires_at_ms > $2", holds_column),
          std::array<SqlParam, 2>{scope, std::to_string(request.now_ms)});
      if (!live) return database_error(live.error());
      const auto in_flight = static_cast<std::uint64_t>(live->empty() ? 0 : sql_integer(live->front()[0]));
      // A slot frees when a call settles, not at a window's end: retry shortly.
      check(RequestWindow{scope, *limits->max_parallel, in_flight, request.now_ms + 1000, RateKind::parallel, 1},
            in_flight < *limits->max_parallel);
    }
    counted_scopes.push_back(scope);
  }
  for (auto& refused : full) {
    if (refused) {
      outcome.rate_refused = std::move(refused);
      break;
    }
  }
  return {};
}

StoreResult<void> GovernanceStore::count_requests(const std::vector<std::string>& scopes, std::int64_t window_start_ms,
                                                  std::uint64_t tokens) {
  for (const std::string& scope : scopes) {
    const std::array<SqlParam, 3> row{scope, std::to_string(window_start_ms), std::to_string(tokens)};
    auto counted = session_->run(
        "UPDATE gov_rates SET requests = requests + 1, tokens = tokens + $3 WHERE scope = $1 AND window_start_ms = $2",
        row);
    if (!counted) return database_error(counted.error());
  }
  return {};
}

StoreResult<void> GovernanceStore::sweep(const std::vector<std::string>& scopes, std::int64_t now_ms) {
  // Expired holds of these scopes (any period; every scope when none): charged in full, then gone.
  std::vector<SqlParam> params;
  const std::string filter = expired_filter(scopes, now_ms, params);
  auto rows = session_->run(
      fmt::format("DELETE FROM gov_holds WHERE {} RETURNING {}, amount_pico", filter, kExpiredColumns), params);
  if (!rows) return database_error(rows.error());
  ledger::BudgetDeltas deltas;
  for (const SqlRow& row : *rows) {
    const ledger::SettledHold hold = expired_reservation(row);
    ledger::add_settlement(deltas, hold, hold.amount_pico, true);
  }
  if (auto charged = apply_expiry_deltas(*session_, deltas); !charged) return database_error(charged.error());
  return {};
}

StoreResult<std::uint64_t> GovernanceStore::sweep_expired(std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  auto transaction = WriteTransaction::begin(*session_);
  if (!transaction) return database_error(transaction.error());
  auto counted = session_->run("SELECT COUNT(*) FROM gov_holds WHERE expires_at_ms <= $1",
                               std::array<SqlParam, 1>{std::to_string(now_ms)});
  if (!counted) return database_error(counted.error());
  // Both sweeps' budget rows in one ordered batch, as the ledger writer locks them.
  if (auto locked = lock_for_sweep({}, {}, now_ms); !locked) return database_error(locked.error());
  if (auto swept = sweep({}, now_ms); !swept) return swept.error();
  auto leases = sweep_leases({}, now_ms);  // lease mode: store_leases.cpp
  if (!leases) return leases.error();
  if (auto committed = transaction->commit(); !committed) return database_error(committed.error());
  return static_cast<std::uint64_t>(counted->empty() ? 0 : sql_integer(counted->front()[0])) + *leases;
}

StoreResult<ScopeUsage> GovernanceStore::usage(const std::string& scope, const Limits& limits, std::int64_t now_ms) {
  auto period = period_window(limits.budget_period, limits.timezone, now_ms);
  if (!period) return StoreError{FailureKind::invalid, period.error().message};
  ScopeUsage usage;
  usage.period = *period;
  {
    std::lock_guard lock(mutex_);
    const std::array<SqlParam, 2> params{scope, std::to_string(period->start_ms)};
    auto rows = session_->run("SELECT spent_pico, held_pico FROM gov_budgets WHERE scope = $1 AND period_start_ms = $2",
                              params);
    if (!rows) return database_error(rows.error());
    if (!rows->empty()) {
      usage.spent_pico = sql_integer(rows->front()[0]);
      usage.held_pico = sql_integer(rows->front()[1]);
    }
    const std::array<SqlParam, 2> window{scope, std::to_string(now_ms - now_ms % kRateWindowMs)};
    auto requests =
        session_->run("SELECT requests, tokens FROM gov_rates WHERE scope = $1 AND window_start_ms = $2", window);
    if (!requests) return database_error(requests.error());
    if (!requests->empty()) {
      usage.requests_this_minute = sql_count(requests->front()[0]);
      usage.tokens_this_minute = sql_count(requests->front()[1]);
    }
  }
  if (limits.budget_pico)
    usage.remaining_pico = std::max<std::int64_t>(0, *limits.budget_pico - usage.spent_pico - usage.held_pico);
  return usage;
}

StoreResult<HoldOutcome> GovernanceStore::hold(const HoldRequest& request) {
  // Key before team: "key:" sorts before "team:", the order every writer locks rows in.
  std::vector<ScopePlan> plans;
  auto plan_scope = [&](std::string scope, const Limits& limits) -> StoreResult<void> {
    auto period = period_window(limits.budget_period, limits.timezone, request.now_ms);
    if (!period) return StoreError{FailureKind::invalid, period.error().message};
    plans.push_back(ScopePlan{std::move(scope), *period, limits.budget_pico});
    return {};
  };
  if (request.budgeted) {
    if (auto planned = plan_scope(key_scope(request.key->id), request.key->limits); !planned) return planned.error();
  }
  if (request.budgeted && request.team != nullptr) {
    if (auto planned = plan_scope(team_scope(request.team->id), request.team->limits); !planned)
      return planned.error();
  }
  std::sort(plans.begin(), plans.end(), [](const ScopePlan& a, const ScopePlan& b) { return a.scope < b.scope; });

  std::lock_guard lock(mutex_);
  // PostgreSQL: one statement, one round trip, however many replicas queue on the key.
  if (session_->engine() == Engine::postgresql) return admit_in_one_statement(*session_, request, plans);
  // SQLite: one BEGIN IMMEDIATE transaction on a local file (the same answers).
  auto transaction = WriteTransaction::begin(*session_);
  if (!transaction) return database_error(transaction.error());
  HoldOutcome outcome;
  if (!plans.empty()) {
    if (auto held = hold_budgets(request, plans, outcome); !held) return held.error();
  }
  std::vector<std::string> rate_scopes;
  if (auto checked = check_requests(request, outcome, rate_scopes); !checked) return checked.error();
  if (outcome.rate_refused && !outcome.refused && outcome.remaining_pico) {
    *outcome.remaining_pico += request.amount_pico;  // it fit, so nothing was clamped: exact
  }
  if (!outcome.rate_refused && !outcome.refused) {
    const std::int64_t window_start = request.now_ms - request.now_ms % kRateWindowMs;
    // Tokens are reserved only with a hold row, the thing that settles them to the actual use.
    const bool reserves_tokens = !plans.empty() && !rate_scopes.empty();
    if (!plans.empty()) {
      if (auto taken = take_hold(request, plans, reserves_tokens ? std::optional(window_start) : std::nullopt); !taken)
        return taken.error();
    }
    if (auto counted = count_requests(rate_scopes, window_start, reserves_tokens ? request.tokens : 0); !counted)
      return counted.error();
  }
  // A refusal commits too: the sweep above stands either way.
  if (auto committed = transaction->commit(); !committed) return database_error(committed.error());
  return outcome;
}

StoreResult<void> GovernanceStore::hold_budgets(const HoldRequest& request, const std::vector<ScopePlan>& plans,
                                                HoldOutcome& outcome) {
  std::vector<std::string> scopes;
  for (const ScopePlan& plan : plans) {
    scopes.push_back(plan.scope);
    const std::array<SqlParam, 2> row{plan.scope, std::to_string(plan.period.start_ms)};
    auto created = session_->run(
        "INSERT INTO gov_budgets (scope, period_start_ms) VALUES ($1, $2) ON CONFLICT (scope, period_start_ms) DO NOTHING",
        row);
    if (!created) return database_error(created.error());
  }
  // SQLite only (BEGIN IMMEDIATE serialises writers); PostgreSQL admits in turnout_admit.
  std::string select = "SELECT scope, spent_pico, held_pico FROM gov_budgets WHERE ";
  std::vector<SqlParam> params;
  for (std::size_t i = 0; i < plans.size(); ++i) {
    if (i > 0) select += " OR ";
    select += fmt::format("(scope = ${} AND period_start_ms = ${})", 2 * i + 1, 2 * i + 2);
    params.emplace_back(plans[i].scope);
    params.emplace_back(std::to_string(plans[i].period.start_ms));
  }
  select += " ORDER BY scope";
  if (auto swept = sweep(scopes, request.now_ms); !swept) return swept.error();
  auto rows = session_->run(select, params);
  if (!rows) return database_error(rows.error());
  std::map<std::string, std::pair<std::int64_t, std::int64_t>, std::less<>> used;  // spent, held
  for (const SqlRow& row : *rows) used[row[0].value_or("")] = {sql_integer(row[1]), sql_integer(row[2])};

  std::optional<std::int64_t> least_room;
  for (const ScopePlan& plan : plans) {
    if (!plan.budget_pico) continue;
    const auto [spent, held] = used[plan.scope];
    const std::int64_t room = *plan.budget_pico - spent - held;
    least_room = std::min(least_room.value_or(room), room);
    if (request.amount_pico > room && !outcome.refused)
      outcome.refused = BudgetShortfall{plan.scope, *plan.budget_pico, spent + held, request.amount_pico, plan.period};
  }
  if (least_room) {
    // After this hold when it is taken; as it stands when it is not.
    outcome.remaining_pico = std::max<std::int64_t>(outcome.refused ? *least_room : *least_room - request.amount_pico, 0);
  }
  return {};
}

StoreResult<void> GovernanceStore::take_hold(const HoldRequest& request, const std::vector<ScopePlan>& plans,
                                             std::optional<std::int64_t> rate_window_ms) {
  const ScopePlan& key_plan = plans.front();
  const ScopePlan* team_plan = plans.size() > 1 ? &plans[1] : nullptr;
  const std::array<SqlParam, 10> hold_row{
      request.hold_id, key_plan.scope, std::to_string(key_plan.period.start_ms),
      team_plan ? SqlParam(team_plan->scope) : std::nullopt,
      team_plan ? SqlParam(std::to_string(team_plan->period.start_ms)) : std::nullopt,
      std::to_string(request.amount_pico), std::to_string(request.now_ms), std::to_string(request.expires_at_ms),
      std::to_string(rate_window_ms ? request.tokens : 0),
      rate_window_ms ? SqlParam(std::to_string(*rate_window_ms)) : std::nullopt};
  auto inserted = session_->run(
      "INSERT INTO gov_holds (id, key_scope, key_period_ms, team_scope, team_period_ms, amount_pico, created_at_ms, "
      "expires_at_ms, tokens, rate_window_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
      hold_row);
  if (!inserted) return database_error(inserted.error());
  for (const ScopePlan& plan : plans) {
    const std::array<SqlParam, 3> update{std::to_string(request.amount_pico), plan.scope,
                                         std::to_string(plan.period.start_ms)};
    auto held = session_->run(
        "UPDATE gov_budgets SET held_pico = held_pico + $1 WHERE scope = $2 AND period_start_ms = $3", update);
    if (!held) return database_error(held.error());
  }
  return {};
}

}  // namespace turnout::governance
