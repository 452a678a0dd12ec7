#include "server/services.hpp"

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

}  // namespace

Services::Services(const config::Config& config_in, ledger::Ledger& ledger_in, GatewayOptions options_in)
    : config(config_in),
      ledger(ledger_in),
      options(std::move(options_in)),
      retry_policy(resilience::RetryPolicy::from(config_in.routing)),
      baseline_rates(rates_of(config_in, config_in.routing.baseline_model)),
      cooldowns(config_in.routing.cooldown, configured_model_names(config_in)) {}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::int64_t overhead_us(const Exchange& exchange) {
  const auto overhead = Clock::now() - exchange.start - exchange.upstream - exchange.waiting;
  return std::chrono::duration_cast<std::chrono::microseconds>(overhead).count();
}

HttpResponse json_response(http::status status, unsigned version, std::string body) {
  HttpResponse res{status, version};
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

}  // namespace turnout::server
