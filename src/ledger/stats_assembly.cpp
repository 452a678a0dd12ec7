#include "ledger/stats_assembly.hpp"

#include <limits>

namespace turnout::ledger {
namespace {

bool add_exact(pricing::Money& total, pricing::Money amount) {
  const auto sum = pricing::checked_add(total, amount);
  if (sum) {
    total = *sum;
  }
  return sum.has_value();
}

// The nearest-rank percentiles of one histogram.
void set_percentiles(LatencySummary& summary, const LatencyHistogram& histogram) {
  summary.p50 = histogram.at_rank(nearest_rank(50, histogram.count()));
  summary.p95 = histogram.at_rank(nearest_rank(95, histogram.count()));
  summary.p99 = histogram.at_rank(nearest_rank(99, histogram.count()));
}

}  // namespace

StatsWindow window_of(const StatsQuery& query) {
  constexpr double infinity = std::numeric_limits<double>::infinity();
  return StatsWindow{query.since.value_or(-infinity), query.until.value_or(infinity),
                     unix_now() - kSecondRollupHorizon};
}

Result<void> StatsAccumulator::add(GroupTotals group) {
  if (group.calls == 0) {
    return {};
  }
  ModelStats& model = report_.models[group.model];
  if (!add_exact(model.priced_cost, group.priced_cost) || !add_exact(report_.total_cost, group.priced_cost) || !add_exact(report_.baseline_cost, group.baseline_cost) ||
      !add_exact(report_.savings, group.savings)) {
    return make_error("ledger cost sums exceed the range of a 64-bit pico-dollar amount");
  }
  const std::uint64_t unpriced = group.calls - group.priced_calls;
  model.calls += group.calls;
  model.errors += group.errors;
  model.prompt_tokens += group.prompt_tokens;
  model.completion_tokens += group.completion_tokens;
  model.unpriced_calls += unpriced;
  latency_sums_[group.model] += group.latency_sum;
  report_.model_distribution[std::move(group.model)] += group.calls;
  report_.routes[std::move(group.route)] += group.calls;
  report_.total_calls += group.calls;
  report_.errors += group.errors;
  report_.unpriced_calls += unpriced;
  return {};
}

Result<void> StatsAccumulator::add(KeyTotals group) {
  if (group.calls == 0) {
    return {};
  }
  KeyStats& key = report_.keys[std::move(group.client_key_id)];
  if (!add_exact(key.priced_cost, group.priced_cost)) {
    return make_error("ledger cost sums exceed the range of a 64-bit pico-dollar amount");
  }
  key.calls += group.calls;
  key.prompt_tokens += group.prompt_tokens;
  key.completion_tokens += group.completion_tokens;
  key.unpriced_calls += group.calls - group.priced_calls;
  return {};
}

Result<void> StatsAccumulator::add(EndpointTotals group) {
  if (group.calls == 0) {
    return {};
  }
  EndpointStats& endpoint = report_.endpoints[group.endpoint];
  if (!add_exact(endpoint.priced_cost, group.priced_cost)) {
    return make_error("ledger cost sums exceed the range of a 64-bit pico-dollar amount");
  }
  endpoint.calls += group.calls;
  endpoint.errors += group.errors;
  endpoint.prompt_tokens += group.prompt_tokens;
  endpoint.completion_tokens += group.completion_tokens;
  endpoint.unpriced_calls += group.calls - group.priced_calls;
  endpoint_latency_sums_[std::move(group.endpoint)] += group.latency_sum;
  return {};
}

void StatsAccumulator::add_latencies(const std::string& model, int bucket, const LatencyCell& cell) {
  latencies_[model].add(bucket, cell);
}

Result<void> StatsAccumulator::add_latency_cells(const std::string& model, std::string_view encoded) {
  LatencyHistogram& histogram = latencies_[model];
  return for_each_latency_cell(encoded, [&](int bucket, const LatencyCell& cell) { histogram.add(bucket, cell); });
}

void StatsAccumulator::add_latency(const std::string& model, double latency_ms) { latencies_[model].add(latency_ms); }

StatsReport StatsAccumulator::finish() && {
  double total_latency = 0;
  LatencyHistogram overall;
  for (auto& [name, model] : report_.models) {
    const double latency_sum = latency_sums_[name];
    model.latency_ms.avg = latency_sum / static_cast<double>(model.calls);  // a model row has calls > 0
    if (model.unpriced_calls < model.calls) {
      model.cost = model.priced_cost;  // stays null only when no call of the model was priced
    }
    const LatencyHistogram& histogram = latencies_[name];
    set_percentiles(model.latency_ms, histogram);
    overall.add(histogram);
    total_latency += latency_sum;
  }
  for (auto& [id, key] : report_.keys) {
    if (key.unpriced_calls < key.calls) {
      key.cost = key.priced_cost;
    }
  }
  for (auto& [name, endpoint] : report_.endpoints) {
    if (endpoint.unpriced_calls < endpoint.calls) {
      endpoint.cost = endpoint.priced_cost;
    }
    endpoint.avg_latency_ms = endpoint_latency_sums_[name] / static_cast<double>(endpoint.calls);
  }
  report_.avg_latency_ms =
      report_.total_calls > 0 ? total_latency / static_cast<double>(report_.total_calls) : 0;
  report_.latency_ms.avg = report_.avg_latency_ms;
  set_percentiles(report_.latency_ms, overall);
  return std::move(report_);
}

}  // namespace turnout::ledger
