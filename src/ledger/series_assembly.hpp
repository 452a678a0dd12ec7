#pragma once
// The backend-neutral half of /stats/series. A series reads one roll-up width only: the
// coarsest width that divides the step. Since since, until and step are multiples of that
// width, every roll-up bucket of it in [since, until) lies inside exactly one series
// bucket, so a backend reads the whole window in one query per roll-up table (summed per
// series bucket in SQL) and each row is added to its series bucket's StatsAccumulator: the figures of a
// bucket are put together exactly as /stats puts a window together. No raw record is
// read, so the cost depends on (until - since) / width and the groups, never on the
// ledger's size.
#include "common/result.hpp"
#include "ledger/ledger.hpp"
#include "ledger/rollup.hpp"
#include "ledger/stats_assembly.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace turnout::ledger {

// Limits that keep one request's work bounded: series buckets per answer, and roll-up
// buckets read ((until - since) / series_read_width(step)).
inline constexpr std::int64_t kMaxSeriesBuckets = 1'500;
inline constexpr std::int64_t kMaxSeriesRollupBuckets = 100'000;
inline constexpr std::int64_t kMinSeriesStep = 60;

// The roll-up width a series with `step` reads: the coarsest of week, day, six hours, hour, minute
// dividing it. `step` must be a positive multiple of kMinSeriesStep.
std::int64_t series_read_width(std::int64_t step);

// Why `query` cannot be answered, naming the parameter ("step", "since", "until") first,
// or nullopt when it is valid.
struct SeriesProblem {
  std::string param;
  std::string message;
};
std::optional<SeriesProblem> series_query_problem(const SeriesQuery& query);

class SeriesAccumulator {
 public:
  explicit SeriesAccumulator(const SeriesQuery& query);

  // The accumulator of the series bucket holding the roll-up bucket that starts at
  // `rollup_bucket`, or null outside [since, until).
  StatsAccumulator* bucket_of(std::int64_t rollup_bucket);
  const SeriesQuery& query() const { return query_; }

  SeriesReport finish() &&;

 private:
  SeriesQuery query_;
  std::vector<StatsAccumulator> buckets_;
};

// The roll-up rows a series reads: bucket starts in [since, until) of series_read_width.
inline StatsSegment series_segment(const SeriesQuery& query) {
  return StatsSegment{series_read_width(query.step), static_cast<double>(query.since),
                      static_cast<double>(query.until)};
}

// Reads the series with a backend's three readers, each called once with the segment and
// the accumulator: (model, route) groups, key groups, latency histograms.
template <class ReadGroups, class ReadKeys, class ReadLatencies>
Result<SeriesReport> collect_series(const SeriesQuery& query, ReadGroups read_groups, ReadKeys read_keys,
                                    ReadLatencies read_latencies) {
  if (auto problem = series_query_problem(query)) {
    return make_error("invalid series query: " + problem->message);
  }
  SeriesAccumulator series(query);
  const StatsSegment segment = series_segment(query);
  if (auto read = read_groups(segment, series); !read) {
    return read.error();
  }
  if (auto read = read_keys(segment, series); !read) {
    return read.error();
  }
  if (auto read = read_latencies(segment, series); !read) {
    return read.error();
  }
  return std::move(series).finish();
}

}  // namespace turnout::ledger
