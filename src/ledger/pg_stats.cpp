#include "ledger/pg_stats.hpp"

#include "ledger/stats_assembly.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>

namespace turnout::ledger::pg {
namespace {

// Every query takes the window as $1 (since, inclusive) and $2 (until, exclusive); an
// open end is an infinity, so one indexable condition serves every window. Sums of BIGINT
// are NUMERIC in PostgreSQL: exact, and read back only if they fit in 64 bits.
const std::string kGroupsSql = R"sql(
  SELECT model,
         route,
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

// Newest first here; ties in timestamp go to the later write, as in SQLite.
const std::string kRecentSql = R"sql(
  SELECT id, timestamp, model, route, cost_pico, latency_ms, prompt_tokens, completion_tokens, status
  FROM calls WHERE timestamp >= $1 AND timestamp < $2
  ORDER BY timestamp DESC, seq DESC LIMIT $3
)sql";

// The three percentiles of one model in one round trip; $4..$6 are 0-based ranks.
const std::string kLatenciesAtRanksSql = R"sql(
  SELECT (SELECT latency_ms FROM calls WHERE model = $3 AND timestamp >= $1 AND timestamp < $2
          ORDER BY latency_ms LIMIT 1 OFFSET $4),
         (SELECT latency_ms FROM calls WHERE model = $3 AND timestamp >= $1 AND timestamp < $2
          ORDER BY latency_ms LIMIT 1 OFFSET $5),
         (SELECT latency_ms FROM calls WHERE model = $3 AND timestamp >= $1 AND timestamp < $2
          ORDER BY latency_ms LIMIT 1 OFFSET $6)
)sql";

// A double as PostgreSQL float8 input, exactly: fmt's shortest round-trip form, or the
// spelled-out infinities.
std::string float8_text(double value) {
  if (std::isinf(value)) {
    return value > 0 ? "Infinity" : "-Infinity";
  }
  return fmt::format("{}", value);
}

struct Window {
  std::string since;
  std::string until;
};

Window window_of(const StatsQuery& query) {
  constexpr double infinity = std::numeric_limits<double>::infinity();
  return Window{float8_text(query.since.value_or(-infinity)), float8_text(query.until.value_or(infinity))};
}

std::uint64_t as_count(std::int64_t value) { return static_cast<std::uint64_t>(std::max<std::int64_t>(value, 0)); }

// Reads columns in order, keeping the first error, so row decoding stays flat.
class RowReader {
 public:
  RowReader(const QueryResult& result, int row) : result_(result), row_(row) {}

  std::string text() { return std::string(result_.text(row_, next_++)); }
  std::int64_t integer() { return keep(result_.integer(row_, next_++), std::int64_t{0}); }
  double real() { return keep(result_.real(row_, next_++), 0.0); }
  std::optional<std::int64_t> optional_integer() {
    if (result_.is_null(row_, next_)) {
      ++next_;
      return std::nullopt;
    }
    return integer();
  }
  const std::optional<turnout::Error>& error() const { return error_; }

 private:
  template <class T>
  T keep(turnout::Result<T> value, T fallback) {
    if (value) {
      return *value;
    }
    if (!error_) {
      error_ = value.error();
    }
    return fallback;
  }

  const QueryResult& result_;
  int row_;
  int next_ = 0;
  std::optional<turnout::Error> error_;
};

turnout::Result<StatsReport> query_totals(Connection& connection, const Window& window) {
  const std::array<Param, 2> params{window.since, window.until};
  auto rows = connection.query(kGroupsSql, params);
  if (!rows) {
    return rows.error();
  }
  StatsAccumulator totals;
  for (int row = 0; row < rows->rows(); ++row) {
    RowReader read(*rows, row);
    GroupTotals group;
    group.model = read.text();
    group.route = read.text();
    group.calls = as_count(read.integer());
    group.errors = as_count(read.integer());
    group.prompt_tokens = as_count(read.integer());
    group.completion_tokens = as_count(read.integer());
    group.priced_calls = as_count(read.integer());
    group.priced_cost = pricing::Money{read.integer()};
    group.latency_sum = read.real();
    group.baseline_cost = pricing::Money{read.integer()};
    group.savings = pricing::Money{read.integer()};
    if (read.error()) {
      return *read.error();
    }
    if (auto added = totals.add(std::move(group)); !added) {
      return added.error();
    }
  }
  return std::move(totals).finish();
}

turnout::Result<void> add_recent_calls(Connection& connection, const Window& window, std::size_t limit,
                                       StatsReport& report) {
  if (limit == 0) {
    return {};
  }
  constexpr auto max_limit = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  const std::array<Param, 3> params{window.since, window.until, std::to_string(std::min(limit, max_limit))};
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
    if (read.error()) {
      return *read.error();
    }
    report.recent_calls.push_back(std::move(call));
  }
  return {};
}

turnout::Result<void> add_percentiles(Connection& connection, const Window& window, StatsReport& report) {
  for (auto& [name, model] : report.models) {
    const std::array<Param, 6> params{window.since,
                                      window.until,
                                      name,
                                      std::to_string(nearest_rank(50, model.calls) - 1),
                                      std::to_string(nearest_rank(95, model.calls) - 1),
                                      std::to_string(nearest_rank(99, model.calls) - 1)};
    auto row = connection.query(kLatenciesAtRanksSql, params);
    if (!row) {
      return row.error();
    }
    if (row->rows() != 1) {
      return make_error("ledger percentile query returned no row");
    }
    RowReader read(*row, 0);
    model.latency_ms.p50 = read.real();
    model.latency_ms.p95 = read.real();
    model.latency_ms.p99 = read.real();
    if (read.error()) {
      return *read.error();
    }
  }
  return {};
}

}  // namespace

turnout::Result<StatsReport> query_stats(Connection& connection, const StatsQuery& query) {
  auto snapshot = Transaction::begin(connection, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  if (!snapshot) {
    return snapshot.error();
  }
  const Window window = window_of(query);
  auto totals = query_totals(connection, window);
  if (!totals) {
    return totals.error();
  }
  StatsReport report = std::move(*totals);
  if (auto added = add_percentiles(connection, window, report); !added) {
    return added.error();
  }
  if (auto added = add_recent_calls(connection, window, query.recent, report); !added) {
    return added.error();
  }
  if (auto ended = snapshot->commit(); !ended) {
    return ended.error();
  }
  return report;
}

}  // namespace turnout::ledger::pg
