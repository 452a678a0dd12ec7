#pragma once
// The backend-neutral half of /stats: a backend reads each segment of the window
// (plan_stats_segments: roll-up rows or raw rows) as group totals and latency histogram
// cells; this combines them into a StatsReport, so the two backends cannot disagree on
// how the figures are put together.
#include "common/result.hpp"
#include "ledger/latency_histogram.hpp"
#include "ledger/ledger.hpp"
#include "ledger/rollup.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>

namespace turnout::ledger {

// One (model, route) group of one segment, as summed by the database.
struct GroupTotals {
  std::string model;
  std::string route;
  std::uint64_t calls = 0;
  std::uint64_t errors = 0;
  std::uint64_t prompt_tokens = 0;
  std::uint64_t completion_tokens = 0;
  std::uint64_t priced_calls = 0;  // calls with a known cost
  pricing::Money priced_cost;      // sum over the priced calls
  double latency_sum = 0;
  pricing::Money baseline_cost;    // sum over the calls with a baseline price
  pricing::Money savings;          // sum of (baseline - cost) over calls with both
};

// One client key's group of one segment.
struct KeyTotals {
  std::string client_key_id;
  std::uint64_t calls = 0;
  std::uint64_t prompt_tokens = 0;
  std::uint64_t completion_tokens = 0;
  std::uint64_t priced_calls = 0;
  pricing::Money priced_cost;
};

// One endpoint's group of one segment.
struct EndpointTotals {
  std::string endpoint;
  std::uint64_t calls = 0;
  std::uint64_t errors = 0;
  std::uint64_t prompt_tokens = 0;
  std::uint64_t completion_tokens = 0;
  std::uint64_t priced_calls = 0;
  pricing::Money priced_cost;
  double latency_sum = 0;
};

// A summed count read back from SQL: a negative value (never written) reads as 0.
inline std::uint64_t as_count(std::int64_t value) { return static_cast<std::uint64_t>(std::max<std::int64_t>(value, 0)); }

// Both engines' stats queries select a group's columns in the order read here; `read`
// hands out the next column of the row (text(), integer(), real()), whatever the engine.
template <class Columns>
GroupTotals read_group(Columns&& read) {
  GroupTotals group;
  group.model = read.text();
  group.route = read.text();
  group.calls = as_count(read.integer());
  group.errors = as_count(read.integer());
  group.prompt_tokens = as_count(read.integer());
  group.completion_tokens = as_count(read.integer());
  group.priced_calls = as_count(read.integer());
  group.priced_cost = pricing::Money{read.integer()};  // SUM of no values is NULL: 0
  group.latency_sum = read.real();
  group.baseline_cost = pricing::Money{read.integer()};
  group.savings = pricing::Money{read.integer()};
  return group;
}

template <class Columns>
KeyTotals read_key(Columns&& read) {
  KeyTotals group;
  group.client_key_id = read.text();
  group.calls = as_count(read.integer());
  group.prompt_tokens = as_count(read.integer());
  group.completion_tokens = as_count(read.integer());
  group.priced_calls = as_count(read.integer());
  group.priced_cost = pricing::Money{read.integer()};
  return group;
}

template <class Columns>
EndpointTotals read_endpoint(Columns&& read) {
  EndpointTotals group;
  group.endpoint = read.text();
  group.calls = as_count(read.integer());
  group.errors = as_count(read.integer());
  group.prompt_tokens = as_count(read.integer());
  group.completion_tokens = as_count(read.integer());
  group.priced_calls = as_count(read.integer());
  group.priced_cost = pricing::Money{read.integer()};
  group.latency_sum = read.real();
  return group;
}

class StatsAccumulator {
 public:
  // Fails when a money sum leaves the range of 64-bit pico-dollars: sums are exact or
  // an error, never wrapped. A group without calls is ignored.
  Result<void> add(GroupTotals group);
  Result<void> add(KeyTotals group);
  Result<void> add(EndpointTotals group);
  // Latency histogram cells of one model (from roll-ups or from raw rows).
  void add_latencies(const std::string& model, int bucket, const LatencyCell& cell);
  // The cells of a stored histogram row (latency_histogram.hpp); an error when malformed.
  Result<void> add_latency_cells(const std::string& model, std::string_view encoded);
  void add_latency(const std::string& model, double latency_ms);
  // The report with averages, per-model and per-key costs and percentiles completed.
  StatsReport finish() &&;

 private:
  StatsReport report_;
  std::map<std::string, double> latency_sums_;
  std::map<std::string, double> endpoint_latency_sums_;
  std::map<std::string, LatencyHistogram> latencies_;
};

// A window as a backend queries it: open ends are infinities; second roll-ups are used
// from `seconds_since` on (kSecondRollupHorizon before now).
struct StatsWindow {
  double since;
  double until;
  double seconds_since;
};
StatsWindow window_of(const StatsQuery& query);

// The figures of a window: each segment of plan_stats_segments is read by a backend's
// (model, route) groups, key groups, endpoint groups and latency cells, in that order, into
// one accumulator.
template <class ReadGroups, class ReadKeys, class ReadEndpoints, class ReadLatencies>
Result<StatsReport> collect_stats(StatsWindow window, ReadGroups read_groups, ReadKeys read_keys,
                                  ReadEndpoints read_endpoints, ReadLatencies read_latencies) {
  StatsAccumulator totals;
  for (const StatsSegment& segment : plan_stats_segments(window.since, window.until, window.seconds_since)) {
    if (auto read = read_groups(segment, totals); !read) {
      return read.error();
    }
    if (auto read = read_keys(segment, totals); !read) {
      return read.error();
    }
    if (auto read = read_endpoints(segment, totals); !read) {
      return read.error();
    }
    if (auto read = read_latencies(segment, totals); !read) {
      return read.error();
    }
  }
  return std::move(totals).finish();
}

// Nearest rank: the 1-based rank of the `percent`-th percentile among n sorted values,
// ceil(percent * n / 100) in integers (never below 1).
constexpr std::uint64_t nearest_rank(std::uint64_t percent, std::uint64_t n) {
  return std::max<std::uint64_t>((percent * n + 99) / 100, 1);
}

}  // namespace turnout::ledger
