#include "ledger/latency_histogram.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace turnout::ledger {
namespace {

constexpr int kBucketsPerDoubling = 16;
constexpr int kMinExponent = -10;  // 2^-10 ms, about one microsecond
constexpr int kMaxExponent = 30;   // 2^30 ms, about twelve days
constexpr int kLastBucket = (kMaxExponent - kMinExponent) * kBucketsPerDoubling + 1;

// Parses one number spanning all of `text`.
template <class Number>
bool parse_whole(std::string_view text, Number& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size();
}

// The next `separator`-delimited field of `text`, consumed.
std::string_view next_field(std::string_view& text, char separator) {
  const auto at = text.find(separator);
  const std::string_view field = text.substr(0, at);
  text = at == std::string_view::npos ? std::string_view() : text.substr(at + 1);
  return field;
}

}  // namespace

void add_latency_cell(LatencyCell& into, const LatencyCell& cell) {
  into.count += cell.count;
  into.min_ms = std::min(into.min_ms, cell.min_ms);
  into.max_ms = std::max(into.max_ms, cell.max_ms);
}

void merge_latency_cell(LatencyCells& cells, int bucket, const LatencyCell& cell) {
  auto [slot, inserted] = cells.try_emplace(bucket, cell);
  if (!inserted) add_latency_cell(slot->second, cell);
}

char* write_latency_cell(char* out, int bucket, const LatencyCell& cell) {
  // Without a format, std::to_chars gives the shortest form that reads back to the same
  // double (fmt's runtime format string was parsed per cell: ~5% of a call's CPU at the
  // 300-token load). kMaxLatencyCellText holds the longest cell, so none runs out of room.
  char* const end = out + kMaxLatencyCellText;
  out = std::to_chars(out, end, bucket).ptr;
  *out++ = ',';
  out = std::to_chars(out, end, cell.count).ptr;
  *out++ = ',';
  out = std::to_chars(out, end, cell.min_ms).ptr;
  *out++ = ',';
  return std::to_chars(out, end, cell.max_ms).ptr;
}

std::string encode_latency_cells(const LatencyCells& cells) {
  std::string text;
  text.reserve(cells.size() * 40);
  char item[kMaxLatencyCellText];
  for (const auto& [bucket, cell] : cells) {
    if (!text.empty()) text += ' ';
    text.append(item, write_latency_cell(item, bucket, cell));
  }
  return text;
}

bool take_latency_cell(std::string_view& text, int& bucket, LatencyCell& cell) {
  std::string_view item = next_field(text, ' ');
  return parse_whole(next_field(item, ','), bucket) && parse_whole(next_field(item, ','), cell.count) &&
         parse_whole(next_field(item, ','), cell.min_ms) && parse_whole(item, cell.max_ms) && cell.count > 0;
}

Result<void> decode_latency_cells(std::string_view text, LatencyCells& cells) {
  return for_each_latency_cell(text, [&](int bucket, const LatencyCell& cell) { merge_latency_cell(cells, bucket, cell); });
}

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
  merge_latency_cell(cells_, bucket, cell);
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
