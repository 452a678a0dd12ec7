#include "ledger/sqlite_stats.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
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

// Money sums must be exact or fail: SQLite's SUM already errors on overflow within a
// group, and the sums across groups are checked the same way.
bool add_exact(pricing::Money& total, pricing::Money amount) {
  const auto sum = pricing::checked_add(total, amount);
  if (sum) {
    total = *sum;
  }
  return sum.has_value();
}

Result<void> add_totals(sqlite::Database& db, Window window, StatsReport& report) {
  auto rows = prepare_windowed(db, kGroupsSql, window);
  if (!rows) {
    return rows.error();
  }
  std::map<std::string, double> latency_sums;
  for (;;) {
    auto row = rows->step();
    if (!row) {
      return row.error();
    }
    if (!*row) {
      break;
    }
    const std::uint64_t calls = as_count(rows->column_int(2));
    const std::uint64_t errors = as_count(rows->column_int(3));
    const std::uint64_t priced = as_count(rows->column_int(6));
    const pricing::Money priced_cost{rows->column_int(7)};  // SUM of no values is NULL: 0
    const double latency_sum = rows->column_double(8);
    const pricing::Money baseline_cost{rows->column_int(9)};
    const pricing::Money savings{rows->column_int(10)};
    std::string model_name = rows->column_text(0);

    ModelStats& model = report.models[model_name];
    model.calls += calls;
    model.errors += errors;
    model.prompt_tokens += as_count(rows->column_int(4));
    model.completion_tokens += as_count(rows->column_int(5));
    if (!add_exact(model.priced_cost, priced_cost) || !add_exact(report.total_cost, priced_cost) ||
        !add_exact(report.baseline_cost, baseline_cost) || !add_exact(report.savings, savings)) {
      return make_error("ledger cost sums exceed the range of a 64-bit pico-dollar amount");
    }
    model.unpriced_calls += calls - priced;
    latency_sums[model_name] += latency_sum;
    report.model_distribution[std::move(model_name)] += calls;
    report.routes[rows->column_text(1)] += calls;

    report.total_calls += calls;
    report.errors += errors;
    report.unpriced_calls += calls - priced;
  }
  double total_latency = 0;
  for (auto& [name, model] : report.models) {
    const double latency_sum = latency_sums[name];
    model.latency_ms.avg = latency_sum / static_cast<double>(model.calls);  // a model row has calls > 0
    if (model.unpriced_calls < model.calls) {
      model.cost = model.priced_cost;  // stays null only when no call of the model was priced
    }
    total_latency += latency_sum;
  }
  report.avg_latency_ms = report.total_calls > 0 ? total_latency / static_cast<double>(report.total_calls) : 0;
  return {};
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

// Nearest rank: the 1-based rank of the p-th percentile among n sorted values.
std::uint64_t nearest_rank(std::uint64_t percent, std::uint64_t n) { return std::max<std::uint64_t>((percent * n + 99) / 100, 1); }

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
  StatsReport report;
  for (auto step : {&add_totals, &add_percentiles}) {
    if (auto added = step(db, window, report); !added) {
      return added.error();
    }
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
