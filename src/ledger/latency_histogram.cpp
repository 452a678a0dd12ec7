#include "ledger/latency_histogram.hpp"

#include <algorithm>
#include <cmath>

namespace turnout::ledger {
namespace {

constexpr int kBucketsPerDoubling = 16;
constexpr int kMinExponent = -10;  // 2^-10 ms, about one microsecond
constexpr int kMaxExponent = 30;   // 2^30 ms, about twelve days
constexpr int kLastBucket = (kMaxExponent - kMinExponent) * kBucketsPerDoubling + 1;

}  // namespace

int latency_bucket(double latency_ms) {
  if (!(latency_ms > std::ldexp(1.0, kMinExponent))) {
    return 0;
  }
  const double position = (std::log2(latency_ms) - kMinExponent) * kBucketsPerDoubling;
  if (!(position < kLastBucket - 1)) {
    return kLastBucket;
  }
  return static_cast<int>(std::floor(position)) + 1;
}

double latency_bucket_midpoint(int bucket) {
  if (bucket <= 0) {
    return std::ldexp(1.0, kMinExponent);
  }
  const double position = (static_cast<double>(std::min(bucket, kLastBucket)) - 0.5) / kBucketsPerDoubling;
  return std::exp2(position + kMinExponent);
}

void LatencyHistogram::add(int bucket, const LatencyCell& cell) {
  if (cell.count == 0) {
    return;
  }
  auto [slot, inserted] = cells_.try_emplace(bucket, cell);
  if (!inserted) {
    slot->second.count += cell.count;
    slot->second.min_ms = std::min(slot->second.min_ms, cell.min_ms);
    slot->second.max_ms = std::max(slot->second.max_ms, cell.max_ms);
  }
  count_ += cell.count;
}

void LatencyHistogram::add(const LatencyHistogram& other) {
  for (const auto& [bucket, cell] : other.cells_) {
    add(bucket, cell);
  }
}

double LatencyHistogram::at_rank(std::uint64_t rank) const {
  std::uint64_t seen = 0;
  for (const auto& [bucket, cell] : cells_) {
    seen += cell.count;
    if (seen >= rank) {
      return std::clamp(latency_bucket_midpoint(bucket), cell.min_ms, cell.max_ms);
    }
  }
  return cells_.empty() ? 0 : cells_.rbegin()->second.max_ms;
}

}  // namespace turnout::ledger
