#pragma once
// Writing roll-ups (rollup.hpp) to PostgreSQL: each transaction streams its deltas into
// session staging tables with COPY and adds them in one statement per table, in key
// order, so writers sharing rows lock them in the same order. Also the one-time
// backfill from raw rows written before roll-ups existed.
#include "common/result.hpp"
#include "ledger/postgres/connection.hpp"
#include "ledger/rollup.hpp"

namespace turnout::ledger::pg {

// Adds `rollups` to the stored roll-up rows; the caller holds the transaction.
turnout::Result<void> write_rollups(Connection& connection, const RollupBuilder& rollups);

// Deletes second-level roll-up rows of buckets before `cutoff`.
turnout::Result<void> prune_second_rollups(Connection& connection, double cutoff);

// Rebuilds the roll-ups from every raw row through a cursor, in chunks.
turnout::Result<void> backfill_rollups(Connection& connection);

// backfill_rollups when there are records but no roll-up rows (every stored record has
// roll-up rows, and pruning keeps them): a ledger from before roll-ups existed.
turnout::Result<void> backfill_missing_rollups(Connection& connection);

}  // namespace turnout::ledger::pg
