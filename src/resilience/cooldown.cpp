#include "resilience/cooldown.hpp"

namespace turnout::resilience {
namespace {

std::chrono::steady_clock::duration to_duration(double seconds) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
}

}  // namespace

ModelCooldowns::ModelCooldowns(const config::CooldownConfig& policy, const std::vector<std::string>& models)
    : policy_(policy), window_(to_duration(policy.window_s)), duration_(to_duration(policy.duration_s)) {
  for (const auto& model : models) models_.try_emplace(model);
}

const ModelCooldowns::ModelState* ModelCooldowns::find(std::string_view model) const {
  const auto it = models_.find(model);
  return it == models_.end() ? nullptr : &it->second;
}

ModelCooldowns::ModelState* ModelCooldowns::find(std::string_view model) {
  const auto it = models_.find(model);
  return it == models_.end() ? nullptr : &it->second;
}

bool ModelCooldowns::cooling_down(std::string_view model, Clock::time_point now) const {
  if (!enabled()) return false;
  const ModelState* state = find(model);
  return state != nullptr && now.time_since_epoch().count() < state->cooling_until.load(std::memory_order_relaxed);
}

bool ModelCooldowns::record_failure(std::string_view model, Clock::time_point now) {
  ModelState* state = find(model);
  if (state == nullptr) return false;
  state->failures_total.fetch_add(1, std::memory_order_relaxed);
  state->consecutive_failures.fetch_add(1, std::memory_order_relaxed);
  if (!enabled()) return false;

  std::lock_guard lock(mutex_);
  // Calls that were already under way when the cooldown started change nothing.
  if (now.time_since_epoch().count() < state->cooling_until.load(std::memory_order_relaxed)) return false;
  if (state->on_probation) {
    start_cooldown(*state, now);
    return true;
  }
  auto& recent = state->recent_failures;
  recent.push_back(now);
  while (recent.size() > policy_.failures) recent.pop_front();
  if (recent.size() == policy_.failures && now - recent.front() <= window_) {
    start_cooldown(*state, now);
    return true;
  }
  return false;
}

void ModelCooldowns::start_cooldown(ModelState& state, Clock::time_point now) {
  state.cooling_until.store((now + duration_).time_since_epoch().count(), std::memory_order_relaxed);
  state.on_probation = true;  // until a success: the first failure after the cooldown restarts it
  state.recent_failures.clear();
}

void ModelCooldowns::record_success(std::string_view model) {
  ModelState* state = find(model);
  if (state == nullptr) return;
  // The common case, a healthy model, takes no lock.
  if (state->consecutive_failures.load(std::memory_order_relaxed) == 0 &&
      state->cooling_until.load(std::memory_order_relaxed) == kNotCooling)
    return;
  std::lock_guard lock(mutex_);
  state->consecutive_failures.store(0, std::memory_order_relaxed);
  state->cooling_until.store(kNotCooling, std::memory_order_relaxed);
  state->on_probation = false;
  state->recent_failures.clear();
}

std::vector<ModelCooldownState> ModelCooldowns::snapshot(Clock::time_point now) const {
  std::vector<ModelCooldownState> states;
  states.reserve(models_.size());
  std::lock_guard lock(mutex_);
  for (const auto& [name, state] : models_) {
    ModelCooldownState s;
    s.model = name;
    const Clock::rep until = state.cooling_until.load(std::memory_order_relaxed);
    s.cooling_down = enabled() && now.time_since_epoch().count() < until;
    if (s.cooling_down) s.until = Clock::time_point(Clock::duration(until));
    s.consecutive_failures = state.consecutive_failures.load(std::memory_order_relaxed);
    s.failures_total = state.failures_total.load(std::memory_order_relaxed);
    states.push_back(std::move(s));
  }
  return states;
}

}  // namespace turnout::resilience
