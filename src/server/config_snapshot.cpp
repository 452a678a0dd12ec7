#include "server/config_snapshot.hpp"

#include <utility>
#include <vector>

namespace turnout::server {
namespace {

std::vector<std::string> configured_model_names(const config::Config& config) {
  std::vector<std::string> names;
  names.reserve(config.models.size());
  for (const auto& [name, model] : config.models) names.push_back(name);
  return names;
}

const pricing::Rates* rates_of(const config::Config& config, std::string_view model) {
  const config::ModelConfig* found = config.find_model(model);
  return found ? &found->rates : nullptr;
}

bool same_model_names(const config::Config& a, const config::Config& b) {
  if (a.models.size() != b.models.size()) return false;
  auto left = a.models.begin();
  for (auto right = b.models.begin(); right != b.models.end(); ++left, ++right) {
    if (left->first != right->first) return false;
  }
  return true;
}

// The previous cooldown table when it tracks exactly these models under the same policy
// (its state is still right); a fresh one otherwise.
std::shared_ptr<resilience::ModelCooldowns> cooldowns_for(const config::Config& config, const ConfigSnapshot* previous) {
  if (previous && previous->config.routing.cooldown == config.routing.cooldown &&
      same_model_names(previous->config, config)) {
    return previous->cooldowns;
  }
  return std::make_shared<resilience::ModelCooldowns>(config.routing.cooldown, configured_model_names(config));
}

}  // namespace

ConfigSnapshot::ConfigSnapshot(config::Config config_in, Endpoints endpoints, std::string_view installation_secret,
                               std::shared_ptr<resilience::ModelCooldowns> cooldowns_in)
    : config(std::move(config_in)),
      upstream_endpoints(std::move(endpoints)),
      retry_policy(resilience::RetryPolicy::from(config.routing)),
      baseline_rates(rates_of(config, config.routing.baseline_model)),
      client_keys(config.server.api_keys, installation_secret),
      cooldowns(std::move(cooldowns_in)) {}

Result<std::shared_ptr<const ConfigSnapshot>> build_snapshot(config::Config config, std::string_view installation_secret,
                                                              const ConfigSnapshot* previous) {
  ConfigSnapshot::Endpoints endpoints;
  for (const auto& [name, provider] : config.providers) {
    auto endpoint = upstream::parse_base_url(provider.base_url);
    if (!endpoint) return make_error("providers." + name + ".base_url: " + endpoint.error().message);
    upstream::add_fixed_fields(*endpoint, provider);
    endpoints.emplace(name, std::move(*endpoint));
  }
  auto cooldowns = cooldowns_for(config, previous);
  return std::shared_ptr<const ConfigSnapshot>(std::make_shared<ConfigSnapshot>(
      std::move(config), std::move(endpoints), installation_secret, std::move(cooldowns)));
}

void SnapshotSlot::publish(std::shared_ptr<const ConfigSnapshot> next) {
  std::shared_ptr<const ConfigSnapshot> replaced;  // released outside the lock
  std::lock_guard lock(mutex_);
  replaced = std::exchange(current_, std::move(next));
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

std::shared_ptr<const ConfigSnapshot> SnapshotSlot::load(std::uint64_t& generation) const {
  std::lock_guard lock(mutex_);
  generation = generation_.load(std::memory_order_relaxed);
  return current_;
}

}  // namespace turnout::server
