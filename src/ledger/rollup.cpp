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

namespace {

// Whether the call's money fits the rows' sums (values of rows that do not exist yet: 0).
bool money_fits(std::int64_t priced_cost, std::int64_t baseline_cost, std::int64_t savings, std::int64_t key_cost,
                std::int64_t endpoint_cost, std::int64_t cost, std::int64_t baseline, std::int64_t saving) {
  return add_money(priced_cost, cost) && add_money(baseline_cost, baseline) && add_money(savings, saving) &&
         add_money(key_cost, cost) && add_money(endpoint_cost, cost);
}

struct CallAmounts {
  std::int64_t cost, baseline, saving;
  int latency_cell;
};

void add_to_rows(const CallRecord& record, const CallAmounts& amounts, RollupTotals& row, KeyRollupTotals& by_key,
                 EndpointRollupTotals* by_endpoint, LatencyCells& latencies) {
  row.calls += 1;
  row.errors += is_error(record) ? 1 : 0;
  row.prompt_tokens += static_cast<std::int64_t>(record.usage.prompt_tokens);
  row.completion_tokens += static_cast<std::int64_t>(record.usage.completion_tokens);
  row.priced_calls += record.cost ? 1 : 0;
  row.priced_cost += amounts.cost;
  row.latency_sum += record.latency_ms;
  row.baseline_cost += amounts.baseline;
  row.savings += amounts.saving;

  by_key.calls += 1;
  by_key.prompt_tokens += static_cast<std::int64_t>(record.usage.prompt_tokens);
  by_key.completion_tokens += static_cast<std::int64_t>(record.usage.completion_tokens);
  by_key.priced_calls += record.cost ? 1 : 0;
  by_key.priced_cost += amounts.cost;

  merge_latency_cell(latencies, amounts.latency_cell, LatencyCell{1, record.latency_ms, record.latency_ms});

  if (by_endpoint == nullptr) {
    return;
  }
  by_endpoint->calls += 1;
  by_endpoint->errors += is_error(record) ? 1 : 0;
  by_endpoint->prompt_tokens += static_cast<std::int64_t>(record.usage.prompt_tokens);
  by_endpoint->completion_tokens += static_cast<std::int64_t>(record.usage.completion_tokens);
  by_endpoint->priced_calls += record.cost ? 1 : 0;
  by_endpoint->priced_cost += amounts.cost;
  by_endpoint->latency_sum += record.latency_ms;
}

}  // namespace

Result<void> RollupBuilder::add(const CallRecord& record) {
  const std::int64_t cost = record.cost ? record.cost->pico : 0;
  const std::int64_t baseline = record.baseline_cost ? record.baseline_cost->pico : 0;
  std::int64_t saving = 0;
  if (record.cost && record.baseline_cost &&
      __builtin_sub_overflow(record.baseline_cost->pico, record.cost->pico, &saving)) {
    return make_error("a call's saving exceeds the range of a 64-bit pico-dollar amount");
  }
  const CallAmounts amounts{cost, baseline, saving, latency_bucket(record.latency_ms)};
  const std::size_t levels =
      record.timestamp >= seconds_since_ ? kRollupWidths.size() : kRollupWidths.size() - 1;  // seconds last
  std::array<std::int64_t, kRollupWidths.size()> buckets{};
  for (std::size_t level = 0; level < levels; ++level) {
    buckets[level] = bucket_start(record.timestamp, kRollupWidths[level]);
  }
  constexpr auto kOverflow = "ledger roll-up cost sums exceed the range of a 64-bit pico-dollar amount";

  // Check every money sum before touching anything, so a failed add leaves no trace.
  if (same_rows_as_last(record, levels, buckets)) {
    for (std::size_t level = 0; level < levels; ++level) {
      const LastRows::Rows& rows = last_.rows[level];
      if (!money_fits(rows.totals->priced_cost, rows.totals->baseline_cost, rows.totals->savings,
                      rows.key->priced_cost, rows.endpoint ? rows.endpoint->priced_cost : 0, cost, baseline, saving)) {
        return make_error(kOverflow);
      }
    }
    for (std::size_t level = 0; level < levels; ++level) {
      const LastRows::Rows& rows = last_.rows[level];
      add_to_rows(record, amounts, *rows.totals, *rows.key, rows.endpoint, *rows.latencies);
    }
    return {};
  }

  std::array<RollupKey, kRollupWidths.size()> keys;
  for (std::size_t level = 0; level < levels; ++level) {
    const std::int64_t width = kRollupWidths[level];
    keys[level] = RollupKey{width, buckets[level], record.instance_id, record.model, record.route};
    const auto existing = totals_.find(keys[level]);
    const RollupTotals probe = existing == totals_.end() ? RollupTotals{} : existing->second;
    const auto existing_key =
        key_totals_.find(KeyRollupKey{width, buckets[level], record.instance_id, record.client_key_id});
    const std::int64_t key_cost = existing_key == key_totals_.end() ? 0 : existing_key->second.priced_cost;
    const auto existing_endpoint =
        endpoint_totals_.find(EndpointRollupKey{width, buckets[level], record.instance_id, record.endpoint});
    const std::int64_t endpoint_cost =
        existing_endpoint == endpoint_totals_.end() ? 0 : existing_endpoint->second.priced_cost;
    if (!money_fits(probe.priced_cost, probe.baseline_cost, probe.savings, key_cost, endpoint_cost, cost, baseline,
                    saving)) {
      return make_error(kOverflow);
    }
  }
  last_.valid = false;  // until every level's rows are this call's (an allocation may throw)
  for (std::size_t level = 0; level < levels; ++level) {
    const std::int64_t width = kRollupWidths[level];
    const std::int64_t bucket = buckets[level];
    LastRows::Rows& rows = last_.rows[level];
    rows.totals = &totals_[std::move(keys[level])];
    rows.key = &key_totals_[KeyRollupKey{width, bucket, record.instance_id, record.client_key_id}];
    rows.latencies = &latencies_[HistogramKey{width, bucket, record.instance_id, record.model}];
    rows.endpoint =
        by_endpoint_ ? &endpoint_totals_[EndpointRollupKey{width, bucket, record.instance_id, record.endpoint}] : nullptr;
    add_to_rows(record, amounts, *rows.totals, *rows.key, rows.endpoint, *rows.latencies);
  }
  remember_rows(record, levels, buckets);
  return {};
}

bool RollupBuilder::same_rows_as_last(const CallRecord& record, std::size_t levels,
                                      const std::array<std::int64_t, kRollupWidths.size()>& buckets) const {
  return last_.valid && last_.levels == levels && last_.buckets == buckets && last_.model == record.model &&
         last_.route == record.route && last_.client_key_id == record.client_key_id &&
         last_.endpoint == record.endpoint && last_.instance_id == record.instance_id;
}

void RollupBuilder::remember_rows(const CallRecord& record, std::size_t levels,
                                  const std::array<std::int64_t, kRollupWidths.size()>& buckets) {
  // last_.rows[0, levels) were set by the caller. Valid only once every field is: a copy
  // that throws part-way must leave no memo that matches a mix of two calls.
  last_.valid = false;
  last_.levels = levels;
  last_.buckets = buckets;
  last_.instance_id = record.instance_id;
  last_.model = record.model;
  last_.route = record.route;
  last_.client_key_id = record.client_key_id;
  last_.endpoint = record.endpoint;
  last_.valid = true;
}

void RollupBuilder::clear() {
  last_.valid = false;
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
