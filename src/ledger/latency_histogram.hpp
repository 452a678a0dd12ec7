#pragma once
// Latency histograms for /stats percentiles that do not scan raw rows. Buckets are
// logarithmic, 16 per doubling, so one spans a factor of 2^(1/16) (about 4.4%); each
// bucket also keeps the smallest and largest latency it has seen. A percentile is read by
// nearest rank: the bucket holding that rank gives its geometric midpoint clamped to the
// bucket's observed [min, max], so the answer is always within the latencies that bucket
// holds (within 4.4% of the exact nearest-rank value, and exact when they are equal).
// 16 per doubling keeps a model's histogram for a day at ~100 cells for typical LLM
// latencies, which is what a long /stats window reads per model and instance.
#include "common/result.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

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

// The cells of one histogram by bucket: what one roll-up row (latency_histograms) holds
// for a (width, bucket, instance, model), so a window reads one row per model and bucket
// instead of one per occupied cell.
using LatencyCells = std::map<int, LatencyCell>;

// Adds `cell` to `into`: counts add, min and max widen.
void add_latency_cell(LatencyCell& into, const LatencyCell& cell);

// Adds `cell` to the cell of `bucket` in `cells` (add_latency_cell).
void merge_latency_cell(LatencyCells& cells, int bucket, const LatencyCell& cell);

// The stored text of `cells`: "bucket,count,min_ms,max_ms" per cell, separated by spaces,
// with each double in a form that reads back to the same double (text rather than bytes,
// so both engines can build it in SQL from the old per-cell rows and it has no byte order).
std::string encode_latency_cells(const LatencyCells& cells);

// Room for the longest text of one cell: an int (11), a uint64 (20), two shortest doubles
// (24 each) and three commas.
inline constexpr std::size_t kMaxLatencyCellText = 96;
// Writes one cell's text ("bucket,count,min_ms,max_ms") at `out` and returns its end.
char* write_latency_cell(char* out, int bucket, const LatencyCell& cell);

// Reads the first cell of a stored text into `bucket` and `cell` and drops it from `text`;
// false when it is malformed (a row written by something else).
bool take_latency_cell(std::string_view& text, int& bucket, LatencyCell& cell);

// Hands each cell of a stored text to `visit(bucket, cell)`; an error names what is
// malformed, and then the cells before it have been visited.
template <class Visit>
Result<void> for_each_latency_cell(std::string_view text, Visit visit) {
  while (!text.empty()) {
    const std::string_view rest = text;
    int bucket = 0;
    LatencyCell cell;
    if (!take_latency_cell(text, bucket, cell)) {
      return make_error("malformed latency histogram cell '" + std::string(rest.substr(0, rest.find(' '))) + "'");
    }
    visit(bucket, cell);
  }
  return {};
}

// Merges the cells of a stored text into `cells` (for_each_latency_cell).
Result<void> decode_latency_cells(std::string_view text, LatencyCells& cells);

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
  LatencyCells cells_;
  std::uint64_t count_ = 0;
};

}  // namespace turnout::ledger
