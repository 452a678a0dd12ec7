#pragma once
// Model cooldown (a per-model circuit breaker). A configured model whose upstream calls
// keep failing with retryable failures (429, 5xx, timeouts, connection errors) is skipped
// for `duration_s`, so clients stop paying its timeouts and retries:
//   - `failures` failures within any `window_s` (a sliding window) start a cooldown;
//   - when the cooldown ends the model is on probation: its next failure starts a new
//     cooldown at once, its next success clears it;
//   - any answer that is not a retryable failure resets the count (a 4xx is the
//     request's fault, not the model's).
// Only configured models are tracked: an unknown explicit model is the request's only
// candidate and is tried anyway, and tracking client-chosen names would let clients grow
// the table without bound. The table's shape is fixed at construction, so the hot-path
// queries (cooling_down, record_success on a healthy model) are one lookup and atomic
// loads; failures, which are rare, take a lock. Shared by all event-loop threads.
// Time is passed in by the caller (steady clock), so tests drive it.
#include "config/config.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::resilience {

// One model's state as /health and /metrics show it.
struct ModelCooldownState {
  std::string model;
  bool cooling_down = false;
  std::chrono::steady_clock::time_point until;  // meaningful when cooling_down
  unsigned consecutive_failures = 0;            // since the last success
  std::uint64_t failures_total = 0;             // since start-up
};

class ModelCooldowns {
 public:
  using Clock = std::chrono::steady_clock;

  ModelCooldowns(const config::CooldownConfig& policy, const std::vector<std::string>& models);
  ModelCooldowns(const ModelCooldowns&) = delete;
  ModelCooldowns& operator=(const ModelCooldowns&) = delete;

  bool enabled() const { return policy_.failures > 0; }

  // Whether `model` should be skipped at `now`.
  bool cooling_down(std::string_view model, Clock::time_point now) const;

  // A retryable failure of `model` at `now`; true when it started a cooldown.
  bool record_failure(std::string_view model, Clock::time_point now);

  // An answer that was not a retryable failure.
  void record_success(std::string_view model);

  // Every tracked model, by name.
  std::vector<ModelCooldownState> snapshot(Clock::time_point now) const;

 private:
  struct ModelState {
    // Written under mutex_, read without it on the hot path.
    std::atomic<Clock::rep> cooling_until{kNotCooling};  // steady-clock ticks
    std::atomic<unsigned> consecutive_failures{0};
    std::atomic<std::uint64_t> failures_total{0};
    // Under mutex_ only.
    std::deque<Clock::time_point> recent_failures;  // the last `failures` ones, oldest first
    bool on_probation = false;                      // a cooldown ended without a success since
  };
  static constexpr Clock::rep kNotCooling = std::numeric_limits<Clock::rep>::min();

  const ModelState* find(std::string_view model) const;
  ModelState* find(std::string_view model);
  void start_cooldown(ModelState& state, Clock::time_point now);

  const config::CooldownConfig policy_;
  const Clock::duration window_;
  const Clock::duration duration_;
  std::map<std::string, ModelState, std::less<>> models_;  // keys fixed at construction
  mutable std::mutex mutex_;
};

}  // namespace turnout::resilience
