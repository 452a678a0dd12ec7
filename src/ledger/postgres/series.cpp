// GET /stats/series over the PostgreSQL roll-ups (docs/REFERENCE.md §5): each roll-up
// table summed per series bucket in SQL, read in one snapshot.
#include "ledger/postgres/stats.hpp"
#include "ledger/postgres/stats_rows.hpp"
#include "ledger/series_assembly.hpp"

#include <array>
#include <functional>
#include <string>

namespace turnout::ledger::pg {
namespace {

// The series reads (series_assembly.hpp): the roll-up queries above summed per series
// bucket, whose start ($1 + a multiple of the step $4) comes last so a row decodes like a
// /stats row. Summing in SQL keeps the rows handed to the gateway to buckets x groups.
const std::string kSeriesGroupsSql = R"sql(
  SELECT model, route,
         SUM(calls), SUM(errors), SUM(prompt_tokens), SUM(completion_tokens), SUM(priced_calls),
         SUM(priced_cost_pico), SUM(latency_sum), SUM(baseline_cost_pico), SUM(savings_pico),
         $1::BIGINT + (bucket - $1::BIGINT) / $4::BIGINT * $4::BIGINT AS start
  FROM rollups WHERE width = $3 AND bucket >= $1::BIGINT AND bucket < $2::BIGINT
  GROUP BY start, model, route
)sql";

const std::string kSeriesKeysSql = R"sql(
  SELECT client_key_id, SUM(calls), SUM(prompt_tokens), SUM(completion_tokens), SUM(priced_calls),
         SUM(priced_cost_pico), $1::BIGINT + (bucket - $1::BIGINT) / $4::BIGINT * $4::BIGINT AS start
  FROM key_rollups WHERE width = $3 AND bucket >= $1::BIGINT AND bucket < $2::BIGINT
  GROUP BY start, client_key_id
)sql";

const std::string kSeriesLatenciesSql = R"sql(
  SELECT $1::BIGINT + (bucket - $1::BIGINT) / $4::BIGINT * $4::BIGINT AS start, model, cells
  FROM latency_histograms WHERE width = $3 AND bucket >= $1::BIGINT AND bucket < $2::BIGINT
)sql";

// A series query: bounds, roll-up width and step as BIGINT parameters.
turnout::Result<QueryResult> query_series_rows(Connection& connection, const std::string& sql,
                                               const StatsSegment& segment, const SeriesAccumulator& series) {
  const std::array<Param, 4> params{std::to_string(series.query().since), std::to_string(series.query().until),
                                    std::to_string(segment.width), std::to_string(series.query().step)};
  return connection.query(sql, params);
}

// Series readers: each row goes to the series bucket it was summed for. A groups or keys
// row is decoded by `read_row` (read_group, read_key), its bucket start coming last.
template <class ReadRow>
turnout::Result<void> add_series_rows(Connection& connection, const std::string& sql, const StatsSegment& segment,
                                      SeriesAccumulator& series, ReadRow read_row) {
  auto rows = query_series_rows(connection, sql, segment, series);
  if (!rows) {
    return rows.error();
  }
  for (int row = 0; row < rows->rows(); ++row) {
    RowReader read(*rows, row);
    auto group = read_row(read);
    const std::int64_t bucket = read.integer();
    if (read.error()) {
      return *read.error();
    }
    if (StatsAccumulator* totals = series.bucket_of(bucket)) {
      if (auto added = totals->add(std::move(group)); !added) {
        return added.error();
      }
    }
  }
  return {};
}

turnout::Result<void> add_series_groups(Connection& connection, const StatsSegment& segment, SeriesAccumulator& series) {
  return add_series_rows(connection, kSeriesGroupsSql, segment, series, read_group<RowReader&>);
}

turnout::Result<void> add_series_keys(Connection& connection, const StatsSegment& segment, SeriesAccumulator& series) {
  return add_series_rows(connection, kSeriesKeysSql, segment, series, read_key<RowReader&>);
}

turnout::Result<void> add_series_latencies(Connection& connection, const StatsSegment& segment,
                                           SeriesAccumulator& series) {
  auto rows = query_series_rows(connection, kSeriesLatenciesSql, segment, series);
  if (!rows) {
    return rows.error();
  }
  for (int row = 0; row < rows->rows(); ++row) {
    RowReader read(*rows, row);
    const std::int64_t bucket = read.integer();
    if (read.error()) {
      return *read.error();
    }
    if (StatsAccumulator* totals = series.bucket_of(bucket)) {
      if (auto added = add_histogram(read, *totals); !added) {
        return added.error();
      }
    }
  }
  return {};
}

}  // namespace

turnout::Result<SeriesReport> query_series(Connection& connection, const SeriesQuery& query) {
  auto snapshot = Transaction::begin(connection, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  if (!snapshot) {
    return snapshot.error();
  }
  auto report = collect_series(query, std::bind_front(add_series_groups, std::ref(connection)),
                               std::bind_front(add_series_keys, std::ref(connection)),
                               std::bind_front(add_series_latencies, std::ref(connection)));
  if (!report) {
    return report.error();
  }
  if (auto ended = snapshot->commit(); !ended) {
    return ended.error();
  }
  return report;
}

}  // namespace turnout::ledger::pg
