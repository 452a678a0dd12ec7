#include "ledger/series_assembly.hpp"

#include <fmt/format.h>

namespace turnout::ledger {

std::int64_t series_read_width(std::int64_t step) {
  for (const std::int64_t width : kRollupWidths) {
    if (width >= kMinSeriesStep && step % width == 0) {
      return width;
    }
  }
  return kMinSeriesStep;  // unreachable for a valid step
}

std::optional<SeriesProblem> series_query_problem(const SeriesQuery& query) {
  if (query.step < kMinSeriesStep || query.step % kMinSeriesStep != 0) {
    return SeriesProblem{"step", fmt::format("'step' must be a whole number of minutes in seconds (a multiple of {}).",
                                             kMinSeriesStep)};
  }
  if (query.since % query.step != 0) {
    return SeriesProblem{"since", "'since' must be a multiple of 'step'."};
  }
  if (query.until % query.step != 0 || query.until <= query.since) {
    return SeriesProblem{"until", "'until' must be a multiple of 'step' after 'since'."};
  }
  // Compared by division, so neither figure can overflow.
  const std::int64_t buckets = (query.until - query.since) / query.step;
  if (buckets > kMaxSeriesBuckets) {
    return SeriesProblem{"step", fmt::format("The window holds {} buckets of 'step'; at most {} are allowed: "
                                             "use a larger 'step' or a shorter window.",
                                             buckets, kMaxSeriesBuckets)};
  }
  if ((query.until - query.since) / series_read_width(query.step) > kMaxSeriesRollupBuckets) {
    return SeriesProblem{"step", fmt::format("'step' {} is read from too many roll-up buckets over this window; "
                                             "use a 'step' that is a multiple of an hour or a day.",
                                             query.step)};
  }
  return std::nullopt;
}

SeriesAccumulator::SeriesAccumulator(const SeriesQuery& query)
    : query_(query), buckets_(static_cast<std::size_t>((query.until - query.since) / query.step)) {}

StatsAccumulator* SeriesAccumulator::bucket_of(std::int64_t rollup_bucket) {
  if (rollup_bucket < query_.since || rollup_bucket >= query_.until) {
    return nullptr;
  }
  return &buckets_[static_cast<std::size_t>((rollup_bucket - query_.since) / query_.step)];
}

SeriesReport SeriesAccumulator::finish() && {
  SeriesReport report{query_, {}};
  report.buckets.reserve(buckets_.size());
  for (StatsAccumulator& bucket : buckets_) {
    report.buckets.push_back(std::move(bucket).finish());
  }
  return report;
}

}  // namespace turnout::ledger
