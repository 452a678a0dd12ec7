#include "ledger/sqlite/stats.hpp"

#include "ledger/rollup.hpp"
#include "ledger/series_assembly.hpp"
#include "ledger/stats_assembly.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <string_view>

namespace turnout::ledger {
namespace {

// Every segment query takes its range as ?1 (inclusive) and ?2 (exclusive); roll-up
// queries take the bucket width as ?3. An open end is an infinity.

constexpr std::string_view kRawGroupsSql = R"sql(
  SELECT model, route,
         COUNT(*),
         SUM(error_type <> '' OR status >= 400),
         SUM(prompt_tokens),
         SUM(completion_tokens),
         COUNT(cost_pico),
         SUM(cost_pico),
         TOTAL(latency_ms),
         SUM(baseline_cost_pico),
         SUM(baseline_cost_pico - cost_pico)
  FROM calls WHERE timestamp >= ?1 AND timestamp < ?2
  GROUP BY model, route
)sql";

constexpr std::string_view kRollupGroupsSql = R"sql(
  SELECT model, route,
         SUM(calls), SUM(errors), SUM(prompt_tokens), SUM(completion_tokens), SUM(priced_calls),
         SUM(priced_cost_pico), TOTAL(latency_sum), SUM(baseline_cost_pico), SUM(savings_pico)
  FROM rollups WHERE width = ?3 AND bucket >= ?1 AND bucket < ?2
  GROUP BY model, route
)sql";

constexpr std::string_view kRawKeysSql = R"sql(
  SELECT client_key_id, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), COUNT(cost_pico), SUM(cost_pico)
  FROM calls WHERE timestamp >= ?1 AND timestamp < ?2
  GROUP BY client_key_id
)sql";

constexpr std::string_view kRollupKeysSql = R"sql(
  SELECT client_key_id, SUM(calls), SUM(prompt_tokens), SUM(completion_tokens), SUM(priced_calls),
         SUM(priced_cost_pico)
  FROM key_rollups WHERE width = ?3 AND bucket >= ?1 AND bucket < ?2
  GROUP BY client_key_id
)sql";

constexpr std::string_view kRawEndpointsSql = R"sql(
  SELECT endpoint, COUNT(*), SUM(error_type <> '' OR status >= 400), SUM(prompt_tokens), SUM(completion_tokens),
         COUNT(cost_pico), SUM(cost_pico), TOTAL(latency_ms)
  FROM calls WHERE timestamp >= ?1 AND timestamp < ?2
  GROUP BY endpoint
)sql";

constexpr std::string_view kRollupEndpointsSql = R"sql(
  SELECT endpoint, SUM(calls), SUM(errors), SUM(prompt_tokens), SUM(completion_tokens), SUM(priced_calls),
         SUM(priced_cost_pico), TOTAL(latency_sum)
  FROM endpoint_rollups WHERE width = ?3 AND bucket >= ?1 AND bucket < ?2
  GROUP BY endpoint
)sql";

constexpr std::string_view kRawLatenciesSql = R"sql(
  SELECT model, latency_ms FROM calls WHERE timestamp >= ?1 AND timestamp < ?2
)sql";

// One row per (bucket, instance, model): its cells are merged in memory (latency_histogram.hpp).
constexpr std::string_view kRollupLatenciesSql = R"sql(
  SELECT model, cells FROM latency_histograms WHERE width = ?3 AND bucket >= ?1 AND bucket < ?2
)sql";

// The series reads (series_assembly.hpp): the roll-up queries above summed per series
// bucket, whose start (?1 + a multiple of the step ?4) comes last so a row decodes like a
// /stats row. Summing in SQL keeps the rows handed to the gateway to buckets x groups.
constexpr std::string_view kSeriesGroupsSql = R"sql(
  SELECT model, route,
         SUM(calls), SUM(errors), SUM(prompt_tokens), SUM(completion_tokens), SUM(priced_calls),
         SUM(priced_cost_pico), TOTAL(latency_sum), SUM(baseline_cost_pico), SUM(savings_pico),
         ?1 + (bucket - ?1) / ?4 * ?4 AS start
  FROM rollups WHERE width = ?3 AND bucket >= ?1 AND bucket < ?2
  GROUP BY start, model, route
)sql";

constexpr std::string_view kSeriesKeysSql = R"sql(
  SELECT client_key_id, SUM(calls), SUM(prompt_tokens), SUM(completion_tokens), SUM(priced_calls),
         SUM(priced_cost_pico), ?1 + (bucket - ?1) / ?4 * ?4 AS start
  FROM key_rollups WHERE width = ?3 AND bucket >= ?1 AND bucket < ?2
  GROUP BY start, client_key_id
)sql";

constexpr std::string_view kSeriesLatenciesSql = R"sql(
  SELECT model, cells, ?1 + (bucket - ?1) / ?4 * ?4 AS start
  FROM latency_histograms WHERE width = ?3 AND bucket >= ?1 AND bucket < ?2
)sql";

// Newest first here (the index walks backwards); ties in timestamp go to the later write.
constexpr std::string_view kRecentSql = R"sql(
  SELECT id, timestamp, model, route, cost_pico, latency_ms, prompt_tokens, completion_tokens, status,
         counted_prompt_tokens, attempts, error_type
  FROM calls WHERE timestamp >= ?1 AND timestamp < ?2
  ORDER BY timestamp DESC, seq DESC LIMIT ?3
)sql";


Result<sqlite::Statement> prepare_segment(sqlite::Database& db, std::string_view raw_sql,
                                          std::string_view rollup_sql, const StatsSegment& segment) {
  auto statement = db.prepare(segment.width == 0 ? raw_sql : rollup_sql);
  if (statement) {
    statement->bind(1, segment.since);
    statement->bind(2, segment.until);
    if (segment.width != 0) {
      statement->bind(3, segment.width);
    }
  }
  return statement;
}

// The columns of the current row in order, for read_group, read_key and read_endpoint
// (stats_assembly.hpp).
class ColumnCursor {
 public:
  explicit ColumnCursor(const sqlite::Statement& row) : row_(row) {}
  std::string text() { return row_.column_text(next_++); }
  std::int64_t integer() { return row_.column_int(next_++); }
  double real() { return row_.column_double(next_++); }

 private:
  const sqlite::Statement& row_;
  int next_ = 0;
};

// Steps `rows` to the end, handing each row to `read`.
template <class ReadRow>
Result<void> for_each_row(sqlite::Statement& rows, ReadRow read) {
  for (;;) {
    auto row = rows.step();
    if (!row) {
      return row.error();
    }
    if (!*row) {
      return {};
    }
    if (auto done = read(rows); !done) {
      return done;
    }
  }
}

// SQLite's SUM errors on overflow within a group; StatsAccumulator checks the sums across groups.
Result<void> add_groups(sqlite::Database& db, const StatsSegment& segment, StatsAccumulator& totals) {
  auto rows = prepare_segment(db, kRawGroupsSql, kRollupGroupsSql, segment);
  if (!rows) {
    return rows.error();
  }
  return for_each_row(*rows, [&](sqlite::Statement& row) { return totals.add(read_group(ColumnCursor(row))); });
}

Result<void> add_keys(sqlite::Database& db, const StatsSegment& segment, StatsAccumulator& totals) {
  auto rows = prepare_segment(db, kRawKeysSql, kRollupKeysSql, segment);
  if (!rows) {
    return rows.error();
  }
  return for_each_row(*rows, [&](sqlite::Statement& row) { return totals.add(read_key(ColumnCursor(row))); });
}

Result<void> add_endpoints(sqlite::Database& db, const StatsSegment& segment, StatsAccumulator& totals) {
  auto rows = prepare_segment(db, kRawEndpointsSql, kRollupEndpointsSql, segment);
  if (!rows) {
    return rows.error();
  }
  return for_each_row(*rows, [&](sqlite::Statement& row) { return totals.add(read_endpoint(ColumnCursor(row))); });
}

// Columns 0-1 of a roll-up latency row (model, cells) into `totals`.
Result<void> add_histogram(sqlite::Statement& row, StatsAccumulator& totals) {
  return totals.add_latency_cells(row.column_text(0), row.column_text(1));
}

Result<void> add_latencies(sqlite::Database& db, const StatsSegment& segment, StatsAccumulator& totals) {
  auto rows = prepare_segment(db, kRawLatenciesSql, kRollupLatenciesSql, segment);
  if (!rows) {
    return rows.error();
  }
  if (segment.width == 0) {
    return for_each_row(*rows, [&](sqlite::Statement& row) -> Result<void> {
      totals.add_latency(row.column_text(0), row.column_double(1));
      return {};
    });
  }
  return for_each_row(*rows, [&](sqlite::Statement& row) { return add_histogram(row, totals); });
}

Result<void> add_recent_calls(sqlite::Database& db, double since, double until, std::size_t limit,
                              StatsReport& report) {
  if (limit == 0) {
    return {};
  }
  auto rows = db.prepare(kRecentSql);
  if (!rows) {
    return rows.error();
  }
  constexpr auto max_limit = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  rows->bind(1, since);
  rows->bind(2, until);
  rows->bind(3, static_cast<std::int64_t>(std::min(limit, max_limit)));
  auto read = for_each_row(*rows, [&](sqlite::Statement& row) -> Result<void> {
    RecentCall call;
    call.id = row.column_text(0);
    call.timestamp = row.column_double(1);
    call.model = row.column_text(2);
    call.route = row.column_text(3);
    if (auto pico = row.column_optional_int(4)) {
      call.cost = pricing::Money{*pico};
    }
    call.latency_ms = row.column_double(5);
    call.prompt_tokens = as_count(row.column_int(6));
    call.completion_tokens = as_count(row.column_int(7));
    call.status = static_cast<int>(row.column_int(8));
    if (auto counted = row.column_optional_int(9)) call.counted_prompt_tokens = as_count(*counted);
    call.attempts = static_cast<int>(row.column_int(10));
    call.error_type = row.column_text(11);
    report.recent_calls.push_back(std::move(call));
    return {};
  });
  std::reverse(report.recent_calls.begin(), report.recent_calls.end());  // oldest first
  return read;
}

// A series query with its bounds as integers (so the bucket arithmetic is integral).
Result<sqlite::Statement> prepare_series(sqlite::Database& db, std::string_view sql, const StatsSegment& segment,
                                         const SeriesAccumulator& series) {
  auto statement = db.prepare(sql);
  if (statement) {
    statement->bind(1, series.query().since);
    statement->bind(2, series.query().until);
    statement->bind(3, segment.width);
    statement->bind(4, series.query().step);
  }
  return statement;
}

// Series readers: each row goes to the series bucket it was summed for.
Result<void> add_series_groups(sqlite::Database& db, const StatsSegment& segment, SeriesAccumulator& series) {
  auto rows = prepare_series(db, kSeriesGroupsSql, segment, series);
  if (!rows) {
    return rows.error();
  }
  return for_each_row(*rows, [&](sqlite::Statement& row) -> Result<void> {
    StatsAccumulator* bucket = series.bucket_of(row.column_int(11));
    return bucket ? bucket->add(read_group(ColumnCursor(row))) : Result<void>{};
  });
}

Result<void> add_series_keys(sqlite::Database& db, const StatsSegment& segment, SeriesAccumulator& series) {
  auto rows = prepare_series(db, kSeriesKeysSql, segment, series);
  if (!rows) {
    return rows.error();
  }
  return for_each_row(*rows, [&](sqlite::Statement& row) -> Result<void> {
    StatsAccumulator* bucket = series.bucket_of(row.column_int(6));
    return bucket ? bucket->add(read_key(ColumnCursor(row))) : Result<void>{};
  });
}

Result<void> add_series_latencies(sqlite::Database& db, const StatsSegment& segment, SeriesAccumulator& series) {
  auto rows = prepare_series(db, kSeriesLatenciesSql, segment, series);
  if (!rows) {
    return rows.error();
  }
  return for_each_row(*rows, [&](sqlite::Statement& row) -> Result<void> {
    StatsAccumulator* bucket = series.bucket_of(row.column_int(2));
    return bucket ? add_histogram(row, *bucket) : Result<void>{};
  });
}

}  // namespace

Result<SeriesReport> query_sqlite_series(sqlite::Database& db, const SeriesQuery& query) {
  auto snapshot = sqlite::Transaction::begin(db, "BEGIN");
  if (!snapshot) {
    return snapshot.error();
  }
  auto report = collect_series(query, std::bind_front(add_series_groups, std::ref(db)),
                               std::bind_front(add_series_keys, std::ref(db)),
                               std::bind_front(add_series_latencies, std::ref(db)));
  if (!report) {
    return report.error();
  }
  if (auto ended = snapshot->commit(); !ended) {
    return ended.error();
  }
  return report;
}

Result<StatsReport> query_sqlite_stats(sqlite::Database& db, const StatsQuery& query) {
  // A read transaction pins one WAL snapshot for every query below.
  auto snapshot = sqlite::Transaction::begin(db, "BEGIN");
  if (!snapshot) {
    return snapshot.error();
  }
  const StatsWindow window = window_of(query);
  auto report = collect_stats(window, std::bind_front(add_groups, std::ref(db)), std::bind_front(add_keys, std::ref(db)),
                              std::bind_front(add_endpoints, std::ref(db)), std::bind_front(add_latencies, std::ref(db)));
  if (!report) {
    return report.error();
  }
  if (auto added = add_recent_calls(db, window.since, window.until, query.recent, *report); !added) {
    return added.error();
  }
  if (auto ended = snapshot->commit(); !ended) {
    return ended.error();
  }
  return report;
}

}  // namespace turnout::ledger
