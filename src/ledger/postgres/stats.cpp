#include "ledger/postgres/stats.hpp"

#include "ledger/postgres/stats_rows.hpp"
#include "ledger/rollup.hpp"
#include "ledger/stats_assembly.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <string>

namespace turnout::ledger::pg {
namespace {

// Every segment query takes its range as $1 (inclusive) and $2 (exclusive); roll-up
// queries take the bucket width as $3. An open end is an infinity. Sums of BIGINT are
// NUMERIC in PostgreSQL: exact, and read back only if they fit in 64 bits.
const std::string kRawGroupsSql = R"sql(
  SELECT model, route,
         COUNT(*),
         COUNT(*) FILTER (WHERE error_type <> '' OR status >= 400),
         COALESCE(SUM(prompt_tokens), 0),
         COALESCE(SUM(completion_tokens), 0),
         COUNT(cost_pico),
         COALESCE(SUM(cost_pico), 0),
         COALESCE(SUM(latency_ms), 0),
         COALESCE(SUM(baseline_cost_pico), 0),
         COALESCE(SUM(baseline_cost_pico::NUMERIC - cost_pico), 0)
  FROM calls WHERE timestamp >= $1 AND timestamp < $2
  GROUP BY model, route
)sql";

const std::string kRollupGroupsSql = R"sql(
  SELECT model, route,
         SUM(calls), SUM(errors), SUM(prompt_tokens), SUM(completion_tokens), SUM(priced_calls),
         SUM(priced_cost_pico), SUM(latency_sum), SUM(baseline_cost_pico), SUM(savings_pico)
  FROM rollups WHERE width = $3 AND bucket >= $1 AND bucket < $2
  GROUP BY model, route
)sql";

const std::string kRawKeysSql = R"sql(
  SELECT client_key_id, COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0),
         COUNT(cost_pico), COALESCE(SUM(cost_pico), 0)
  FROM calls WHERE timestamp >= $1 AND timestamp < $2
  GROUP BY client_key_id
)sql";

const std::string kRollupKeysSql = R"sql(
  SELECT client_key_id, SUM(calls), SUM(prompt_tokens), SUM(completion_tokens), SUM(priced_calls),
         SUM(priced_cost_pico)
  FROM key_rollups WHERE width = $3 AND bucket >= $1 AND bucket < $2
  GROUP BY client_key_id
)sql";

const std::string kRawEndpointsSql = R"sql(
  SELECT endpoint, COUNT(*), COUNT(*) FILTER (WHERE error_type <> '' OR status >= 400),
         COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), COUNT(cost_pico),
         COALESCE(SUM(cost_pico), 0), COALESCE(SUM(latency_ms), 0)
  FROM calls WHERE timestamp >= $1 AND timestamp < $2
  GROUP BY endpoint
)sql";

const std::string kRollupEndpointsSql = R"sql(
  SELECT endpoint, SUM(calls), SUM(errors), SUM(prompt_tokens), SUM(completion_tokens), SUM(priced_calls),
         SUM(priced_cost_pico), SUM(latency_sum)
  FROM endpoint_rollups WHERE width = $3 AND bucket >= $1 AND bucket < $2
  GROUP BY endpoint
)sql";

const std::string kRawLatenciesSql = R"sql(
  SELECT model, latency_ms FROM calls WHERE timestamp >= $1 AND timestamp < $2
)sql";

const std::string kRollupLatenciesSql = R"sql(
  SELECT model, cells FROM latency_histograms WHERE width = $3 AND bucket >= $1 AND bucket < $2
)sql";

// Newest first here; ties in timestamp go to the later write, as in SQLite.
const std::string kRecentSql = R"sql(
  SELECT id, timestamp, model, route, cost_pico, latency_ms, prompt_tokens, completion_tokens, status,
         counted_prompt_tokens, attempts, error_type
  FROM calls WHERE timestamp >= $1 AND timestamp < $2
  ORDER BY timestamp DESC, seq DESC LIMIT $3
)sql";

// A double as PostgreSQL float8 input, exactly: fmt's shortest round-trip form, or the
// spelled-out infinities.
std::string float8_text(double value) {
  if (std::isinf(value)) {
    return value > 0 ? "Infinity" : "-Infinity";
  }
  return fmt::format("{}", value);
}

std::string bucket_bound_text(double bound) {
  if (std::isinf(bound)) {
    return std::to_string(bound > 0 ? std::numeric_limits<std::int64_t>::max() : std::numeric_limits<std::int64_t>::min());
  }
  return std::to_string(static_cast<std::int64_t>(bound));
}

turnout::Result<QueryResult> query_segment(Connection& connection, const std::string& raw_sql,
                                           const std::string& rollup_sql, const StatsSegment& segment) {
  if (segment.width == 0) {
    const std::array<Param, 2> params{float8_text(segment.since), float8_text(segment.until)};
    return connection.query(raw_sql, params);
  }
  // Roll-up bounds are whole bucket starts (or open ends): sent as BIGINT so the
  // primary key's index serves the range.
  const std::array<Param, 3> params{bucket_bound_text(segment.since), bucket_bound_text(segment.until),
                                    std::to_string(segment.width)};
  return connection.query(rollup_sql, params);
}

// Each row of the segment, decoded by `read_row`, added to `totals`.
template <class ReadRow>
turnout::Result<void> add_rows(Connection& connection, const std::string& raw_sql, const std::string& rollup_sql,
                               const StatsSegment& segment, StatsAccumulator& totals, ReadRow read_row) {
  auto rows = query_segment(connection, raw_sql, rollup_sql, segment);
  if (!rows) {
    return rows.error();
  }
  for (int row = 0; row < rows->rows(); ++row) {
    RowReader read(*rows, row);
    auto group = read_row(read);
    if (read.error()) {
      return *read.error();
    }
    if (auto added = totals.add(std::move(group)); !added) {
      return added.error();
    }
  }
  return {};
}

turnout::Result<void> add_groups(Connection& connection, const StatsSegment& segment, StatsAccumulator& totals) {
  return add_rows(connection, kRawGroupsSql, kRollupGroupsSql, segment, totals, read_group<RowReader&>);
}

turnout::Result<void> add_keys(Connection& connection, const StatsSegment& segment, StatsAccumulator& totals) {
  return add_rows(connection, kRawKeysSql, kRollupKeysSql, segment, totals, read_key<RowReader&>);
}

turnout::Result<void> add_endpoints(Connection& connection, const StatsSegment& segment, StatsAccumulator& totals) {
  return add_rows(connection, kRawEndpointsSql, kRollupEndpointsSql, segment, totals, read_endpoint<RowReader&>);
}

turnout::Result<void> add_latencies(Connection& connection, const StatsSegment& segment, StatsAccumulator& totals) {
  auto rows = query_segment(connection, kRawLatenciesSql, kRollupLatenciesSql, segment);
  if (!rows) {
    return rows.error();
  }
  for (int row = 0; row < rows->rows(); ++row) {
    RowReader read(*rows, row);
    if (segment.width != 0) {
      // One row per (bucket, instance, model) with all its cells (latency_histogram.hpp).
      if (auto added = add_histogram(read, totals); !added) {
        return added.error();
      }
    } else {
      const std::string model = read.text();
      totals.add_latency(model, read.real());
    }
    if (read.error()) {
      return *read.error();
    }
  }
  return {};
}

turnout::Result<void> add_recent_calls(Connection& connection, double since, double until, std::size_t limit,
                                       StatsReport& report) {
  if (limit == 0) {
    return {};
  }
  constexpr auto max_limit = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  const std::array<Param, 3> params{float8_text(since), float8_text(until),
                                    std::to_string(std::min(limit, max_limit))};
  auto rows = connection.query(kRecentSql, params);
  if (!rows) {
    return rows.error();
  }
  for (int row = rows->rows() - 1; row >= 0; --row) {  // oldest first
    RowReader read(*rows, row);
    RecentCall call;
    call.id = read.text();
    call.timestamp = read.real();
    call.model = read.text();
    call.route = read.text();
    if (auto pico = read.optional_integer()) {
      call.cost = pricing::Money{*pico};
    }
    call.latency_ms = read.real();
    call.prompt_tokens = as_count(read.integer());
    call.completion_tokens = as_count(read.integer());
    call.status = static_cast<int>(read.integer());
    if (auto counted = read.optional_integer()) call.counted_prompt_tokens = as_count(*counted);
    call.attempts = static_cast<int>(read.integer());
    call.error_type = read.text();
    if (read.error()) {
      return *read.error();
    }
    report.recent_calls.push_back(std::move(call));
  }
  return {};
}

}  // namespace

turnout::Result<StatsReport> query_stats(Connection& connection, const StatsQuery& query) {
  auto snapshot = Transaction::begin(connection, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  if (!snapshot) {
    return snapshot.error();
  }
  const StatsWindow window = window_of(query);
  auto report = collect_stats(window, std::bind_front(add_groups, std::ref(connection)),
                              std::bind_front(add_keys, std::ref(connection)),
                              std::bind_front(add_endpoints, std::ref(connection)),
                              std::bind_front(add_latencies, std::ref(connection)));
  if (!report) {
    return report.error();
  }
  if (auto added = add_recent_calls(connection, window.since, window.until, query.recent, *report); !added) {
    return added.error();
  }
  if (auto ended = snapshot->commit(); !ended) {
    return ended.error();
  }
  return report;
}

}  // namespace turnout::ledger::pg
