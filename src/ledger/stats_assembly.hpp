#pragma once
// The backend-neutral half of /stats: every backend groups its window's rows by
// (model, route) in SQL and reads latencies by rank; this turns those group rows into a
// StatsReport, so the two backends cannot disagree on how the figures are combined.
#include "common/result.hpp"
#include "ledger/ledger.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>

namespace turnout::ledger {

// One (model, route) group of the window, as summed by the database.
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

class StatsAccumulator {
 public:
  // Fails when a money sum leaves the range of 64-bit pico-dollars: sums are exact or
  // an error, never wrapped.
  Result<void> add(GroupTotals group);
  // The report with averages and per-model costs completed; percentiles are still 0.
  StatsReport finish() &&;

 private:
  StatsReport report_;
  std::map<std::string, double> latency_sums_;
};

// Nearest rank: the 1-based rank of the `percent`-th percentile among n sorted values,
// ceil(percent * n / 100) in integers (never below 1).
constexpr std::uint64_t nearest_rank(std::uint64_t percent, std::uint64_t n) {
  return std::max<std::uint64_t>((percent * n + 99) / 100, 1);
}

}  // namespace turnout::ledger
