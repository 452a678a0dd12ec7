// What the holds of each scope have done (store.hpp `activity`), for /metrics and /stats.
#include "governance/store.hpp"

#include <algorithm>
#include <map>

namespace turnout::governance {
namespace {

// Live holds per scope: a hold names its key's scope and, for a key in a team, the team's.
constexpr const char* kLiveHoldsSql =
    "SELECT key_scope, COUNT(*), SUM(amount_pico) FROM gov_holds GROUP BY key_scope "
    "UNION ALL SELECT team_scope, COUNT(*), SUM(amount_pico) FROM gov_holds WHERE team_scope IS NOT NULL "
    "GROUP BY team_scope";

constexpr const char* kOutcomesSql =
    "SELECT scope, SUM(expired_holds), SUM(expired_pico), SUM(overruns), SUM(overrun_pico) FROM gov_budgets "
    "GROUP BY scope HAVING SUM(expired_holds) > 0 OR SUM(overruns) > 0";

}  // namespace

StoreResult<std::vector<ScopeActivity>> GovernanceStore::activity(std::size_t max_scopes) {
  std::map<std::string, ScopeActivity, std::less<>> by_scope;
  {
    std::lock_guard lock(mutex_);
    auto live = session_->run(kLiveHoldsSql);
    if (!live) return StoreError{FailureKind::database, live.error().message};
    for (const SqlRow& row : *live) {
      ScopeActivity& scope = by_scope[row[0].value_or("")];
      scope.live_holds += sql_count(row[1]);
      scope.held_pico += sql_integer(row[2]);
    }
    auto outcomes = session_->run(kOutcomesSql);
    if (!outcomes) return StoreError{FailureKind::database, outcomes.error().message};
    for (const SqlRow& row : *outcomes) {
      ScopeActivity& scope = by_scope[row[0].value_or("")];
      scope.expired_holds = sql_count(row[1]);
      scope.expired_pico = sql_integer(row[2]);
      scope.overruns = sql_count(row[3]);
      scope.overrun_pico = sql_integer(row[4]);
    }
  }
  std::vector<ScopeActivity> out;
  out.reserve(by_scope.size());
  for (auto& [name, scope] : by_scope) {
    scope.scope = name;
    out.push_back(std::move(scope));
  }
  const auto weight = [](const ScopeActivity& a) { return a.live_holds + a.expired_holds + a.overruns; };
  std::stable_sort(out.begin(), out.end(),
                   [&](const ScopeActivity& a, const ScopeActivity& b) { return weight(a) > weight(b); });
  if (out.size() > max_scopes) out.resize(max_scopes);
  return out;
}

}  // namespace turnout::governance
