#pragma once
// GovernanceStore::hold on PostgreSQL: the whole admission in one statement, so one round
// trip per admitted request (turnout_admit, ledger/postgres/admit_function.hpp), with the
// same answers as the SQLite transaction in store_holds.cpp.
#include "governance/store.hpp"

#include <vector>

namespace turnout::governance {

// `plans`: the request's budget rows, key before team (none: requests only counted).
// Called in autocommit: the statement is its own transaction.
StoreResult<HoldOutcome> admit_in_one_statement(SqlSession& session, const HoldRequest& request,
                                                const std::vector<ScopePlan>& plans);

}  // namespace turnout::governance
