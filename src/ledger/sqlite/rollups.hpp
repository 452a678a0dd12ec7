#pragma once
// Writing roll-ups (rollup.hpp) to SQLite: additive upserts, and the one-time backfill
// that builds them from the raw rows of a ledger written before they existed.
#include "common/result.hpp"
#include "ledger/rollup.hpp"
#include "ledger/sqlite/db.hpp"

namespace turnout::ledger::sqlite {

// Adds `rollups` to the stored roll-up rows; the caller holds the transaction.
Result<void> write_rollups(Database& db, const RollupBuilder& rollups);

// Deletes second-level roll-up rows of buckets before `cutoff`; the caller holds the transaction.
Result<void> prune_second_rollups(Database& db, double cutoff);

// Rebuilds the roll-ups from every raw row, in chunks (memory stays bounded).
Result<void> backfill_rollups(Database& db);

// backfill_rollups when there are records but no roll-up rows (every stored record has
// roll-up rows, and pruning keeps them): a ledger from before roll-ups existed.
Result<void> backfill_missing_rollups(Database& db);

}  // namespace turnout::ledger::sqlite
