#pragma once
// The SQLite ledger schema as an ordered list of migrations. PRAGMA user_version holds
// the number of migrations applied; opening a database brings it to the newest version
// in one transaction, and a database written by a newer turnout is refused rather than
// misread.
#include "common/result.hpp"
#include "ledger/sqlite/db.hpp"

#include <span>
#include <string_view>

namespace turnout::ledger::sqlite {

struct Migration {
  std::string_view description;
  std::string_view sql;  // one or more statements
  // Runs after `sql`, in the same transaction: data a statement cannot derive alone.
  Result<void> (*then)(Database&) = nullptr;
};

// Migration i (0-based) takes the schema from version i to version i + 1. Append only:
// a released step is never edited, a change is a new step.
std::span<const Migration> ledger_migrations();

// Adds calls.endpoint, count_estimated and count_partial (migration 4) unless they are
// there. The roll-up backfill of migration 3 reads records with today's columns, so it
// calls this first on an older database.
Result<void> ensure_call_columns(Database& db);

// Drops NOT NULL from calls.counted_prompt_tokens (migration "uncounted served prompts"):
// the table is rebuilt from its stored definition, rows, rowids and indexes kept.
Result<void> allow_null_counted_prompt_tokens(Database& db);

// Adds calls.counted_by_fold (migration "calls counted by the fold") with the DEFAULT that
// is right for the gateways still writing to `db` without knowing the column: 1 (left to
// the fold) if the file had the watermark before this open, 0 (counted in its own batch)
// if it is brought past the watermark now. Run by migrate() before it stamps user_version.
Result<void> add_counted_by_fold(Database& db);

// The watermark's DELETE trigger (migration "roll-up watermark") goes with its table: a
// rebuild of `calls` that forgot to re-create it would let new calls reuse seqs the fold
// has passed, never to be counted. Re-creates it when it is missing (lowering the
// watermark to the newest row left, as the trigger would have). For a fully migrated `db`.
Result<void> ensure_watermark_trigger(Database& db);

// Applies the steps `db` has not seen yet, all in one IMMEDIATE transaction (so two
// processes opening the same new file cannot both migrate it). Fails, leaving the
// database untouched, if a step fails or if the database is newer than `migrations`.
Result<void> migrate(Database& db, std::span<const Migration> migrations);

}  // namespace turnout::ledger::sqlite
