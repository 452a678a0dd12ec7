#pragma once
// Governance as /metrics and /stats show it (docs/REFERENCE.md §8.9): per key and team, the
// database's view of holds (live, held, charged by expiry, overruns; the same on every
// replica) and this replica's refusals by reason. Labels are public ids and team ids only,
// never a secret; both lists are bounded (GovernanceStore::activity, RefusalCounter).
#include "admit/admission.hpp"
#include "governance/store.hpp"

#include <string>
#include <vector>

namespace turnout::admit {

// How many scopes /metrics and /stats list at most.
inline constexpr std::size_t kReportedScopes = 1000;

void append_governance_metrics(std::string& out, const std::vector<governance::ScopeActivity>& activity,
                               const std::vector<RefusalCount>& refusals);

// {"scopes":[{"scope","id","live_holds","held_usd","expired_holds","expired_usd","overruns","overrun_usd"}],
//  "refusals":[{"key","team","reason","count"}]}
std::string governance_stats_json(const std::vector<governance::ScopeActivity>& activity,
                                  const std::vector<RefusalCount>& refusals);

// Adds that as "governance" to the /stats JSON object `stats_json` (`/stats` and `turnout
// stats` print the same; the CLI has no refusals of its own).
void append_governance_stats(std::string& stats_json, const std::vector<governance::ScopeActivity>& activity,
                             const std::vector<RefusalCount>& refusals);

}  // namespace turnout::admit
