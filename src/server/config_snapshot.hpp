#pragma once
// Everything a call derives from the config, built once per config load and never
// mutated: the config itself, the upstream endpoints parsed from the providers' base
// URLs, the retry policy, the baseline price, the gateway keys and the model cooldowns.
// A call takes the current snapshot when it is dispatched and keeps it (shared_ptr) until
// it has answered and recorded, so a reload (SIGHUP) never changes the prices, routes or
// providers of a call in flight (docs/REFERENCE.md §3.8 Live reload).
//
// Publishing: SnapshotSlot keeps the current snapshot behind a mutex and a generation
// counter. Each event-loop thread caches the snapshot it last took with its generation;
// a request costs one atomic load of the generation and no lock, and only the first
// request on each thread after a reload takes the mutex to refresh its cache.
#include "common/result.hpp"
#include "config/config.hpp"
#include "resilience/cooldown.hpp"
#include "resilience/retry_policy.hpp"
#include "server/client_keys.hpp"
#include "upstream/client.hpp"

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace turnout::server {

struct ConfigSnapshot {
  using Endpoints = std::map<std::string, upstream::Endpoint, std::less<>>;
  ConfigSnapshot(config::Config config, Endpoints endpoints, std::string_view installation_secret,
                 std::shared_ptr<resilience::ModelCooldowns> cooldowns);
  ConfigSnapshot(const ConfigSnapshot&) = delete;
  ConfigSnapshot& operator=(const ConfigSnapshot&) = delete;

  const config::Config config;
  const Endpoints upstream_endpoints;  // by provider name
  const resilience::RetryPolicy retry_policy;
  const pricing::Rates* const baseline_rates;  // routing.baseline_model's; null when it is not configured
  const ClientKeys client_keys;
  // Shared by every thread and, when the models and the cooldown policy are unchanged,
  // carried over by a reload so that a failing model stays skipped.
  const std::shared_ptr<resilience::ModelCooldowns> cooldowns;
};

// Builds the snapshot for `config`; errors name the key (providers.X.base_url). `previous`
// (may be null) lends its cooldown state when the models and the policy are unchanged.
Result<std::shared_ptr<const ConfigSnapshot>> build_snapshot(config::Config config, std::string_view installation_secret,
                                                              const ConfigSnapshot* previous);

class SnapshotSlot {
 public:
  explicit SnapshotSlot(std::shared_ptr<const ConfigSnapshot> initial) : current_(std::move(initial)) {}

  // Makes `next` the snapshot new calls take.
  void publish(std::shared_ptr<const ConfigSnapshot> next);

  // The current snapshot and its generation (takes the mutex: not for every request).
  std::shared_ptr<const ConfigSnapshot> load(std::uint64_t& generation) const;

  // Changes with every publish; one atomic load.
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const ConfigSnapshot> current_;
  std::atomic<std::uint64_t> generation_{0};
};

// One event-loop thread's cached snapshot: refreshed from the slot when its generation
// moved. Touched only from its thread.
class SnapshotCache {
 public:
  const std::shared_ptr<const ConfigSnapshot>& current(const SnapshotSlot& slot) {
    if (!cached_ || slot.generation() != generation_) cached_ = slot.load(generation_);
    return cached_;
  }

 private:
  std::shared_ptr<const ConfigSnapshot> cached_;
  std::uint64_t generation_ = 0;
};

}  // namespace turnout::server
