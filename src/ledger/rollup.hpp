#pragma once
// Time-bucketed roll-ups: what makes /stats cost independent of the ledger's size.
// Every record is also added, in the same transaction, for each bucket width (week, day,
// six hours, hour, minute, and for the last day second) to one totals row keyed by
// (instance, model, route), one per-key row keyed by (instance, client key), one per-endpoint
// row keyed by (instance, endpoint) and one latency
// histogram row keyed by (instance, model) that holds all of its cells. The six-hour width
// is there for /stats/series: the dashboard's 7-day chart has 6-hour steps, read as 28 rows
// per group instead of 168 hour rows. A
// window is answered from whole weeks, then whole days, hours, minutes (and seconds) at its
// edges, and raw rows only for the partial minutes (seconds) at its two ends
// (plan_stats_segments).
//
// Second buckets make a busy minute cheap to cut (a window ending "now" in a minute with
// thousands of calls), but cost about a row per call where traffic is sparse, so they are
// kept for a day only: written for records less than kSecondRollupLifetime old, pruned
// after it, and used by windows only from kSecondRollupHorizon ago (an hour less, which
// leaves room for clock skew between instances). Keys
// have their own table so the rows a query reads grow with models x routes plus keys, not
// with their product. Sums stay exact: the roll-ups
// hold the same integers the raw rows would have summed to.
//
// Rows are keyed by instance id, so several gateways sharing one PostgreSQL ledger never
// update the same roll-up row: no lock contention and no deadlock between instances.
#include "common/clock.hpp"
#include "common/result.hpp"
#include "ledger/backend.hpp"
#include "ledger/latency_histogram.hpp"

#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::ledger {

// Bucket widths in seconds, coarsest first.
// Each divides the one before it, so a coarser bucket is a union of finer ones.
inline constexpr std::array<std::int64_t, 6> kRollupWidths{604'800, 86'400, 21'600, 3'600, 60, 1};
inline constexpr std::int64_t kSecondWidth = 1;
inline constexpr double kSecondRollupLifetime = 86'400;
inline constexpr double kSecondRollupHorizon = 82'800;

// Start (unix seconds) of the bucket of `width` holding `timestamp`: the largest multiple
// of width that is <= timestamp, compared exactly so a record at a boundary lands in
// the same bucket as a raw-row window comparison would put it.
std::int64_t bucket_start(double timestamp, std::int64_t width);

struct RollupKey {
  std::int64_t width = 0;
  std::int64_t bucket = 0;  // bucket start, unix seconds
  std::string instance_id, model, route;
  auto operator<=>(const RollupKey&) const = default;
};

struct RollupTotals {
  std::int64_t calls = 0, errors = 0, prompt_tokens = 0, completion_tokens = 0, priced_calls = 0;
  std::int64_t priced_cost = 0;    // pico-dollars
  double latency_sum = 0;          // ms
  std::int64_t baseline_cost = 0;  // pico-dollars, over calls with a baseline price
  std::int64_t savings = 0;        // pico-dollars, (baseline - cost) over calls with both
};

struct KeyRollupKey {
  std::int64_t width = 0;
  std::int64_t bucket = 0;
  std::string instance_id, client_key_id;
  auto operator<=>(const KeyRollupKey&) const = default;
};

struct KeyRollupTotals {
  std::int64_t calls = 0, prompt_tokens = 0, completion_tokens = 0, priced_calls = 0;
  std::int64_t priced_cost = 0;  // pico-dollars
};

// One endpoint's row (chat, embeddings, responses): /stats's `endpoints` breakdown.
struct EndpointRollupKey {
  std::int64_t width = 0;
  std::int64_t bucket = 0;
  std::string instance_id, endpoint;
  auto operator<=>(const EndpointRollupKey&) const = default;
};

struct EndpointRollupTotals {
  std::int64_t calls = 0, errors = 0, prompt_tokens = 0, completion_tokens = 0, priced_calls = 0;
  std::int64_t priced_cost = 0;  // pico-dollars
  double latency_sum = 0;        // ms
};

struct HistogramKey {
  std::int64_t width = 0;
  std::int64_t bucket = 0;
  std::string instance_id, model;
  auto operator<=>(const HistogramKey&) const = default;
};

// Each roll-up row's columns in its table's order, key first, for the writers of both
// engines (SQLite binds them, PostgreSQL copies them): one list per table, so a column
// cannot be added to one writer and forgotten in the other. `column` is called with
// std::int64_t, double or std::string_view.
template <class Column>
void visit_columns(const RollupKey& key, const RollupTotals& row, Column&& column) {
  column(key.width); column(key.bucket); column(std::string_view(key.instance_id)); column(std::string_view(key.model));
  column(std::string_view(key.route)); column(row.calls); column(row.errors); column(row.prompt_tokens);
  column(row.completion_tokens); column(row.priced_calls); column(row.priced_cost); column(row.latency_sum);
  column(row.baseline_cost); column(row.savings);
}

template <class Column>
void visit_columns(const KeyRollupKey& key, const KeyRollupTotals& row, Column&& column) {
  column(key.width); column(key.bucket); column(std::string_view(key.instance_id));
  column(std::string_view(key.client_key_id)); column(row.calls); column(row.prompt_tokens);
  column(row.completion_tokens); column(row.priced_calls); column(row.priced_cost);
}

template <class Column>
void visit_columns(const EndpointRollupKey& key, const EndpointRollupTotals& row, Column&& column) {
  column(key.width); column(key.bucket); column(std::string_view(key.instance_id)); column(std::string_view(key.endpoint));
  column(row.calls); column(row.errors); column(row.prompt_tokens); column(row.completion_tokens);
  column(row.priced_calls); column(row.priced_cost); column(row.latency_sum);
}

// Whether a record counts as an error in /stats (docs/REFERENCE.md §5).
inline bool is_error(const CallRecord& record) { return !record.error_type.empty() || record.status >= 400; }

// Accumulates the roll-up deltas of the records a transaction stores. Ordered maps: the
// backends write rows in key order, so two writers touching the same rows (two processes
// configured with one instance id) lock them in the same order and cannot deadlock.
class RollupBuilder {
 public:
  // Records older than `seconds_since` (unix seconds) get no second-level rows. The
  // backfill of a ledger older than the endpoint roll-ups passes `by_endpoint` false: that
  // table does not exist yet, and its own migration builds it from the totals.
  explicit RollupBuilder(double seconds_since, bool by_endpoint = true)
      : seconds_since_(seconds_since), by_endpoint_(by_endpoint) {}

  // Fails when a money sum leaves the 64-bit pico-dollar range (then nothing is added).
  Result<void> add(const CallRecord& record);

  const std::map<RollupKey, RollupTotals>& totals() const { return totals_; }
  const std::map<KeyRollupKey, KeyRollupTotals>& key_totals() const { return key_totals_; }
  const std::map<EndpointRollupKey, EndpointRollupTotals>& endpoint_totals() const { return endpoint_totals_; }
  // The cells each histogram row gains.
  const std::map<HistogramKey, LatencyCells>& latencies() const { return latencies_; }
  bool empty() const { return totals_.empty(); }
  void clear();

 private:
  // The rows the last add() wrote to, one set per width. Calls close in time with one
  // instance, model, route, client key and endpoint (most calls under load) land in the
  // same rows, so such a call reuses them: no key built, copied or looked up (issue 16:
  // the keys' strings and map walks were ~5% of the ledger writer at the 300-token load).
  // Map nodes do not move, so the pointers hold until clear(); a copy or a move of the
  // builder starts without them (they would point into the other builder's maps).
  struct LastRows {
    struct Rows {
      RollupTotals* totals = nullptr;
      KeyRollupTotals* key = nullptr;
      EndpointRollupTotals* endpoint = nullptr;  // null without by_endpoint
      LatencyCells* latencies = nullptr;
    };
    LastRows() = default;
    LastRows(const LastRows&) {}
    LastRows& operator=(const LastRows&) {
      valid = false;
      return *this;
    }
    // A moved-from builder's maps no longer hold the nodes its pointers name.
    LastRows(LastRows&& other) noexcept { other.valid = false; }
    LastRows& operator=(LastRows&& other) noexcept {
      valid = false;
      other.valid = false;
      return *this;
    }
    bool valid = false;
    std::size_t levels = 0;
    std::array<std::int64_t, kRollupWidths.size()> buckets{};
    std::string instance_id, model, route, client_key_id, endpoint;
    std::array<Rows, kRollupWidths.size()> rows{};
  };

  bool same_rows_as_last(const CallRecord& record, std::size_t levels,
                         const std::array<std::int64_t, kRollupWidths.size()>& buckets) const;
  void remember_rows(const CallRecord& record, std::size_t levels,
                     const std::array<std::int64_t, kRollupWidths.size()>& buckets);

  double seconds_since_;
  bool by_endpoint_;
  std::map<RollupKey, RollupTotals> totals_;
  std::map<KeyRollupKey, KeyRollupTotals> key_totals_;
  std::map<EndpointRollupKey, EndpointRollupTotals> endpoint_totals_;
  std::map<HistogramKey, LatencyCells> latencies_;
  LastRows last_;
};

// One piece of a /stats window: roll-up rows of `width` with bucket start in
// [since, until), or raw rows (width 0) with timestamp in [since, until).
struct StatsSegment {
  std::int64_t width = 0;
  double since = 0;
  double until = 0;
};

// Splits [since, until) (either end may be infinite) into the fewest roll-up segments
// plus raw segments at each end: shorter than a second from `seconds_since` on (where
// second buckets exist), shorter than a minute before. The segments are disjoint and cover
// the window exactly.
std::vector<StatsSegment> plan_stats_segments(double since, double until, double seconds_since);

}  // namespace turnout::ledger
