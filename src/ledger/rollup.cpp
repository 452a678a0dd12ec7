#include "ledger/rollup.hpp"

#include "pricing/pricing.hpp"

#include <cmath>

namespace turnout::ledger {
namespace {

bool add_money(std::int64_t& total, std::int64_t amount) {
  const auto sum = pricing::checked_add(pricing::Money{total}, pricing::Money{amount});
  if (sum) {
    total = sum->pico;
  }
  return sum.has_value();
}

// Smallest multiple of width >= value (infinities pass through).
double ceil_to(double value, std::int64_t width) {
  return std::isinf(value) ? value : std::ceil(value / static_cast<double>(width)) * static_cast<double>(width);
}
double floor_to(double value, std::int64_t width) {
  return std::isinf(value) ? value : std::floor(value / static_cast<double>(width)) * static_cast<double>(width);
}

void cover(double since, double until, std::size_t level, double seconds_since, std::vector<StatsSegment>& out) {
  if (!(since < until)) {
    return;
  }
  if (level == kRollupWidths.size() || (kRollupWidths[level] == kSecondWidth && since < seconds_since)) {
    out.push_back(StatsSegment{0, since, until});
    return;
  }
  const std::int64_t width = kRollupWidths[level];
  double first = ceil_to(since, width);
  double last = floor_to(until, width);
  // Division can round; settle the boundaries by exact comparison.
  if (!std::isinf(first) && first - static_cast<double>(width) >= since) {
    first -= static_cast<double>(width);
  }
  if (!std::isinf(last) && last + static_cast<double>(width) <= until) {
    last += static_cast<double>(width);
  }
  if (first < last) {
    out.push_back(StatsSegment{width, first, last});
    cover(since, first, level + 1, seconds_since, out);
    cover(last, until, level + 1, seconds_since, out);
  } else {
    cover(since, until, level + 1, seconds_since, out);
  }
}

}  // namespace

std::int64_t bucket_start(double timestamp, std::int64_t width) {
  const double w = static_cast<double>(width);
  double start = std::floor(timestamp / w) * w;
  if (start > timestamp) {
    start -= w;
  } else if (start + w <= timestamp) {
    start += w;
  }
  return static_cast<std::int64_t>(start);
}

Result<void> RollupBuilder::add(const CallRecord& record) {
  const std::int64_t cost = record.cost ? record.cost->pico : 0;
  const std::int64_t baseline = record.baseline_cost ? record.baseline_cost->pico : 0;
  std::int64_t saving = 0;
  if (record.cost && record.baseline_cost &&
      __builtin_sub_overflow(record.baseline_cost->pico, record.cost->pico, &saving)) {
    return make_error("a call's saving exceeds the range of a 64-bit pico-dollar amount");
  }
  const std::size_t levels =
      record.timestamp >= seconds_since_ ? kRollupWidths.size() : kRollupWidths.size() - 1;  // seconds last
  // Check every money sum before touching anything, so a failed add leaves no trace.
  std::array<RollupKey, kRollupWidths.size()> keys;
  for (std::size_t level = 0; level < levels; ++level) {
    const std::int64_t width = kRollupWidths[level];
    keys[level] = RollupKey{width, bucket_start(record.timestamp, width), record.instance_id, record.model,
                            record.route};
    const auto existing = totals_.find(keys[level]);
    RollupTotals probe = existing == totals_.end() ? RollupTotals{} : existing->second;
    const auto existing_key =
        key_totals_.find(KeyRollupKey{width, keys[level].bucket, record.instance_id, record.client_key_id});
    std::int64_t key_cost = existing_key == key_totals_.end() ? 0 : existing_key->second.priced_cost;
    const auto existing_endpoint =
        endpoint_totals_.find(EndpointRollupKey{width, keys[level].bucket, record.instance_id, record.endpoint});
    std::int64_t endpoint_cost = existing_endpoint == endpoint_totals_.end() ? 0 : existing_endpoint->second.priced_cost;
    if (!add_money(probe.priced_cost, cost) || !add_money(probe.baseline_cost, baseline) ||
        !add_money(probe.savings, saving) || !add_money(key_cost, cost) || !add_money(endpoint_cost, cost)) {
      return make_error("ledger roll-up cost sums exceed the range of a 64-bit pico-dollar amount");
    }
  }
  const int latency_cell = latency_bucket(record.latency_ms);
  for (std::size_t level = 0; level < levels; ++level) {
    const std::int64_t width = kRollupWidths[level];
    const std::int64_t bucket = keys[level].bucket;
    RollupTotals& row = totals_[std::move(keys[level])];
    row.calls += 1;
    row.errors += is_error(record) ? 1 : 0;
    row.prompt_tokens += static_cast<std::int64_t>(record.usage.prompt_tokens);
    row.completion_tokens += static_cast<std::int64_t>(record.usage.completion_tokens);
    row.priced_calls += record.cost ? 1 : 0;
    row.priced_cost += cost;
    row.latency_sum += record.latency_ms;
    row.baseline_cost += baseline;
    row.savings += saving;

    KeyRollupTotals& by_key = key_totals_[KeyRollupKey{width, bucket, record.instance_id, record.client_key_id}];
    by_key.calls += 1;
    by_key.prompt_tokens += static_cast<std::int64_t>(record.usage.prompt_tokens);
    by_key.completion_tokens += static_cast<std::int64_t>(record.usage.completion_tokens);
    by_key.priced_calls += record.cost ? 1 : 0;
    by_key.priced_cost += cost;

    merge_latency_cell(latencies_[HistogramKey{width, bucket, record.instance_id, record.model}], latency_cell,
                       LatencyCell{1, record.latency_ms, record.latency_ms});

    if (!by_endpoint_) {
      continue;
    }
    EndpointRollupTotals& by_endpoint =
        endpoint_totals_[EndpointRollupKey{width, bucket, record.instance_id, record.endpoint}];
    by_endpoint.calls += 1;
    by_endpoint.errors += is_error(record) ? 1 : 0;
    by_endpoint.prompt_tokens += static_cast<std::int64_t>(record.usage.prompt_tokens);
    by_endpoint.completion_tokens += static_cast<std::int64_t>(record.usage.completion_tokens);
    by_endpoint.priced_calls += record.cost ? 1 : 0;
    by_endpoint.priced_cost += cost;
    by_endpoint.latency_sum += record.latency_ms;
  }
  return {};
}

void RollupBuilder::clear() {
  totals_.clear();
  key_totals_.clear();
  endpoint_totals_.clear();
  latencies_.clear();
}

std::vector<StatsSegment> plan_stats_segments(double since, double until, double seconds_since) {
  std::vector<StatsSegment> segments;
  cover(since, until, 0, seconds_since, segments);
  return segments;
}

}  // namespace turnout::ledger
