#pragma once
// docs/REFERENCE.md §5 statistics over the PostgreSQL `calls` table, the same queries as for
// SQLite: sums grouped by (model, route) taken as NUMERIC (exact), percentiles read by
// nearest rank from the (model, latency_ms) index, newest calls by (timestamp, seq). Rows
// are never loaded into the gateway to aggregate them.
#include "ledger/ledger.hpp"
#include "ledger/postgres/connection.hpp"

namespace turnout::ledger::pg {

// Runs every query in one REPEATABLE READ transaction: all figures describe one snapshot,
// even while other instances write.
turnout::Result<StatsReport> query_stats(Connection& connection, const StatsQuery& query);

// GET /stats/series from the roll-ups (series_assembly.hpp), in one REPEATABLE READ
// transaction: every instance's roll-up rows of one snapshot.
turnout::Result<SeriesReport> query_series(Connection& connection, const SeriesQuery& query);

}  // namespace turnout::ledger::pg
