#include "ledger/sqlite_stats.hpp"

#include "ledger/stats_assembly.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string_view>

namespace turnout::ledger {
namespace {

// Every query takes the window as ?1 (since, inclusive) and ?2 (until, exclusive); an
// open end is an infinity, so one indexable condition serves every window.

// One scan grouped by (model, route) feeds both the per-model and the per-route figures.
constexpr std::string_view kGroupsSql = R"sql(
  SELECT model,
         route,
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

// Newest first here (the index walks backwards); ties in timestamp go to the later write.
constexpr std::string_view kRecentSql = R"sql(
  SELECT id, timestamp, model, route, cost_pico, latency_ms, prompt_tokens, completion_tokens, status
  FROM calls WHERE timestamp >= ?1 AND timestamp < ?2
  ORDER BY timestamp DESC, seq DESC LIMIT ?3
)sql";

constexpr std::string_view kLatencyAtRankSql = R"sql(
  SELECT latency_ms FROM calls INDEXED BY calls_model_latency
  WHERE model = ?3 AND timestamp >= ?1 AND timestamp < ?2
  ORDER BY latency_ms LIMIT 1 OFFSET ?4
)sql";

struct Window {
  double since;
  double until;
};

Window window_of(const StatsQuery& query) {
  constexpr double infinity = std::numeric_limits<double>::infinity();
  return Window{query.since.value_or(-infinity), query.until.value_or(infinity)};
}

Result<sqlite::Statement> prepare_windowed(sqlite::Database& db, std::string_view sql, Window window) {
  auto statement = db.prepare(sql);
  if (statement) {
    statement->bind(1, window.since);
    statement->bind(2, window.until);
  }
  return statement;
}

std::uint64_t as_count(std::int64_t value) { return static_cast<std::uint64_t>(std::max<std::int64_t>(value, 0)); }

// SQLite's SUM errors on overflow within a group; StatsAccumulator checks the sums across groups.
Result<StatsReport> query_totals(sqlite::Database& db, Window window) {
  auto rows = prepare_windowed(db, kGroupsSql, window);
  if (!rows) {
    return rows.error();
  }
  StatsAccumulator totals;
  for (;;) {
    auto row = rows->step();
    if (!row) {
      return row.error();
    }
    if (!*row) {
      break;
    }
    GroupTotals group;
    group.model = rows->column_text(0);
    group.route = rows->column_text(1);
    group.calls = as_count(rows->column_int(2));
    group.errors = as_count(rows->column_int(3));
    group.prompt_tokens = as_count(rows->column_int(4));
    group.completion_tokens = as_count(rows->column_int(5));
    group.priced_calls = as_count(rows->column_int(6));
    group.priced_cost = pricing::Money{rows->column_int(7)};  // SUM of no values is NULL: 0
    group.latency_sum = rows->column_double(8);
    group.baseline_cost = pricing::Money{rows->column_int(9)};
    group.savings = pricing::Money{rows->column_int(10)};
    if (auto added = totals.add(std::move(group)); !added) {
      return added.error();
    }
  }
  return std::move(totals).finish();
}

Result<void> add_recent_calls(sqlite::Database& db, Window window, std::size_t limit, StatsReport& report) {
  if (limit == 0) {
    return {};
  }
  auto rows = prepare_windowed(db, kRecentSql, window);
  if (!rows) {
    return rows.error();
  }
  constexpr auto max_limit = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  rows->bind(3, static_cast<std::int64_t>(std::min(limit, max_limit)));
  for (;;) {
    auto row = rows->step();
    if (!row) {
      return row.error();
    }
    if (!*row) {
      break;
    }
    RecentCall call;
    call.id = rows->column_text(0);
    call.timestamp = rows->column_double(1);
    call.model = rows->column_text(2);
    call.route = rows->column_text(3);
    if (auto pico = rows->column_optional_int(4)) {
      call.cost = pricing::Money{*pico};
    }
    call.latency_ms = rows->column_double(5);
    call.prompt_tokens = as_count(rows->column_int(6));
    call.completion_tokens = as_count(rows->column_int(7));
    call.status = static_cast<int>(rows->column_int(8));
    report.recent_calls.push_back(std::move(call));
  }
  std::reverse(report.recent_calls.begin(), report.recent_calls.end());  // oldest first
  return {};
}

Result<double> latency_at_rank(sqlite::Statement& at_rank, std::uint64_t rank) {
  at_rank.bind(4, static_cast<std::int64_t>(rank - 1));
  auto row = at_rank.step();
  double latency = 0;
  if (row && *row) {
    latency = at_rank.column_double(0);
  }
  at_rank.reset();
  if (!row) {
    return row.error();
  }
  return latency;
}

Result<void> add_percentiles(sqlite::Database& db, Window window, StatsReport& report) {
  auto at_rank = prepare_windowed(db, kLatencyAtRankSql, window);
  if (!at_rank) {
    return at_rank.error();
  }
  for (auto& [name, model] : report.models) {
    at_rank->bind(3, std::string_view(name));
    for (auto [percent, target] : {std::pair{50U, &model.latency_ms.p50}, std::pair{95U, &model.latency_ms.p95},
                                   std::pair{99U, &model.latency_ms.p99}}) {
      auto latency = latency_at_rank(*at_rank, nearest_rank(percent, model.calls));
      if (!latency) {
        return latency.error();
      }
      *target = *latency;
    }
  }
  return {};
}

}  // namespace

Result<StatsReport> query_sqlite_stats(sqlite::Database& db, const StatsQuery& query) {
  // A read transaction pins one WAL snapshot for every query below.
  auto snapshot = sqlite::Transaction::begin(db, "BEGIN");
  if (!snapshot) {
    return snapshot.error();
  }
  const Window window = window_of(query);
  auto totals = query_totals(db, window);
  if (!totals) {
    return totals.error();
  }
  StatsReport report = std::move(*totals);
  if (auto added = add_percentiles(db, window, report); !added) {
    return added.error();
  }
  if (auto added = add_recent_calls(db, window, query.recent, report); !added) {
    return added.error();
  }
  if (auto ended = snapshot->commit(); !ended) {
    return ended.error();
  }
  return report;
}

}  // namespace turnout::ledger
