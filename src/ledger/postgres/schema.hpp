#pragma once
// The PostgreSQL ledger schema: the same `calls` table as SQLite (same columns, names
// and meaning) as an ordered list of migrations, with the applied versions recorded in
// `schema_version`. Several gateway instances may start at once against a new database:
// migration runs in one transaction under a transaction-scoped advisory lock, so exactly
// one of them applies each step and the others see the finished schema.
#include "common/result.hpp"
#include "ledger/postgres/connection.hpp"

#include <span>
#include <string_view>

namespace turnout::ledger::pg {

struct Migration {
  std::string_view description;
  std::string_view sql;  // one or more statements
  // Runs after `sql`, in the same transaction: data a statement cannot derive alone.
  turnout::Result<void> (*then)(Connection&) = nullptr;
};

// Migration i (0-based) takes the schema from version i to version i + 1. Append only.
std::span<const Migration> ledger_migrations();

// Adds calls.endpoint, count_estimated and count_partial (migration 4) unless they are
// there. The roll-up backfill of migration 3 reads records with today's columns, so it
// runs this first on an older database.
inline constexpr std::string_view kAddCallColumnsSql =
    "ALTER TABLE calls ADD COLUMN IF NOT EXISTS endpoint TEXT NOT NULL DEFAULT 'chat', "
    "ADD COLUMN IF NOT EXISTS count_estimated BOOLEAN NOT NULL DEFAULT false, "
    "ADD COLUMN IF NOT EXISTS count_partial BOOLEAN NOT NULL DEFAULT false";

// Applies the steps not yet recorded in schema_version, all in one transaction. Fails,
// leaving the database untouched, if a step fails or the database is newer than `migrations`.
turnout::Result<void> migrate(Connection& connection, std::span<const Migration> migrations);

}  // namespace turnout::ledger::pg
