#include "ledger/stats_assembly.hpp"

namespace turnout::ledger {
namespace {

bool add_exact(pricing::Money& total, pricing::Money amount) {
  const auto sum = pricing::checked_add(total, amount);
  if (sum) {
    total = *sum;
  }
  return sum.has_value();
}

}  // namespace

Result<void> StatsAccumulator::add(GroupTotals group) {
  ModelStats& model = report_.models[group.model];
  model.calls += group.calls;
  model.errors += group.errors;
  model.prompt_tokens += group.prompt_tokens;
  model.completion_tokens += group.completion_tokens;
  if (!add_exact(model.priced_cost, group.priced_cost) || !add_exact(report_.total_cost, group.priced_cost) ||
      !add_exact(report_.baseline_cost, group.baseline_cost) || !add_exact(report_.savings, group.savings)) {
    return make_error("ledger cost sums exceed the range of a 64-bit pico-dollar amount");
  }
  const std::uint64_t unpriced = group.calls - group.priced_calls;
  model.unpriced_calls += unpriced;
  latency_sums_[group.model] += group.latency_sum;
  report_.model_distribution[std::move(group.model)] += group.calls;
  report_.routes[std::move(group.route)] += group.calls;
  report_.total_calls += group.calls;
  report_.errors += group.errors;
  report_.unpriced_calls += unpriced;
  return {};
}

StatsReport StatsAccumulator::finish() && {
  double total_latency = 0;
  for (auto& [name, model] : report_.models) {
    const double latency_sum = latency_sums_[name];
    model.latency_ms.avg = latency_sum / static_cast<double>(model.calls);  // a model row has calls > 0
    if (model.unpriced_calls < model.calls) {
      model.cost = model.priced_cost;  // stays null only when no call of the model was priced
    }
    total_latency += latency_sum;
  }
  report_.avg_latency_ms =
      report_.total_calls > 0 ? total_latency / static_cast<double>(report_.total_calls) : 0;
  return std::move(report_);
}

}  // namespace turnout::ledger
