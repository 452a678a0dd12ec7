#pragma once
// The admin operations on keys and teams, answered as JSON (docs/REFERENCE.md
// "Governance"). One copy, called by both `turnout keys|teams` (actor "cli") and the
// admin HTTP API (actor "admin"), so the two cannot drift. Each call blocks on the
// database: run it off the event loop. Every write is audited by the store.
#include "governance/store.hpp"

#include <cstdint>
#include <string>

namespace turnout::governance {

StoreResult<std::string> create_key(GovernanceStore& store, const Fields& fields, const std::string& actor,
                                    std::int64_t now_ms);  // the answer holds the whole key, once
StoreResult<std::string> list_keys(GovernanceStore& store);
StoreResult<std::string> show_key(GovernanceStore& store, const std::string& id, std::int64_t now_ms);  // with usage
StoreResult<std::string> update_key(GovernanceStore& store, const std::string& id, const Fields& fields,
                                    const std::string& actor, std::int64_t now_ms);
StoreResult<std::string> revoke_key(GovernanceStore& store, const std::string& id, const std::string& actor,
                                    std::int64_t now_ms);
StoreResult<std::string> rotate_key(GovernanceStore& store, const std::string& id, const std::string& actor,
                                    std::int64_t now_ms);  // the answer holds the new whole key, once

// A team's id is the name it is created with.
StoreResult<std::string> create_team(GovernanceStore& store, const Fields& fields, const std::string& actor,
                                     std::int64_t now_ms);
StoreResult<std::string> list_teams(GovernanceStore& store);
StoreResult<std::string> show_team(GovernanceStore& store, const std::string& id, std::int64_t now_ms);
StoreResult<std::string> update_team(GovernanceStore& store, const std::string& id, const Fields& fields,
                                     const std::string& actor, std::int64_t now_ms);

}  // namespace turnout::governance
