#pragma once
// Latency histograms for /stats percentiles that do not scan raw rows. Buckets are
// logarithmic, 16 per doubling, so one spans a factor of 2^(1/16) (about 4.4%); each
// bucket also keeps the smallest and largest latency it has seen. A percentile is read by
// nearest rank: the bucket holding that rank gives its geometric midpoint clamped to the
// bucket's observed [min, max], so the answer is always within the latencies that bucket
// holds (within 4.4% of the exact nearest-rank value, and exact when they are equal).
// 16 per doubling keeps a model's histogram for a day at ~100 cells for typical LLM
// latencies, which is what a long /stats window reads per model and instance.
#include <cstdint>
#include <map>

namespace turnout::ledger {

// The bucket a latency falls in. Latencies at or below ~1 microsecond (and NaN) share
// bucket 0; the largest bucket holds everything above ~10^9 ms.
int latency_bucket(double latency_ms);

// The geometric midpoint of a bucket's range.
double latency_bucket_midpoint(int bucket);

struct LatencyCell {
  std::uint64_t count = 0;
  double min_ms = 0;
  double max_ms = 0;
};

class LatencyHistogram {
 public:
  void add(int bucket, const LatencyCell& cell);
  void add(double latency_ms) { add(latency_bucket(latency_ms), LatencyCell{1, latency_ms, latency_ms}); }
  // Adds every cell of `other` (the overall histogram is the sum of the models').
  void add(const LatencyHistogram& other);

  std::uint64_t count() const { return count_; }
  // The latency at 1-based `rank` (1 <= rank <= count()); 0 for an empty histogram.
  double at_rank(std::uint64_t rank) const;

 private:
  std::map<int, LatencyCell> cells_;
  std::uint64_t count_ = 0;
};

}  // namespace turnout::ledger
