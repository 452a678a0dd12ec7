#pragma once
// docs/REFERENCE.md §5 statistics computed by SQL over the raw `calls` rows: sums and counts
// grouped in SQLite (exact integer sums of pico-dollars), percentiles read by rank from
// the (model, latency_ms) index, so no query loads the window's rows into memory.
#include "ledger/ledger.hpp"
#include "ledger/sqlite/db.hpp"

namespace turnout::ledger {

// Runs every query in one read transaction, so all figures describe the same snapshot.
Result<StatsReport> query_sqlite_stats(sqlite::Database& db, const StatsQuery& query);

// GET /stats/series from the roll-ups (series_assembly.hpp), in one read transaction.
Result<SeriesReport> query_sqlite_series(sqlite::Database& db, const SeriesQuery& query);

}  // namespace turnout::ledger
