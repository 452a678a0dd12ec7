#include "server/config_reload.hpp"

#include <utility>

namespace turnout::server {
namespace {

// Every start-up-only key whose value differs, by its config key path.
std::vector<std::string> restart_only_differences(const config::Config& running, const config::Config& next) {
  std::vector<std::string> keys;
  auto check = [&](const char* key, const auto& before, const auto& after) {
    if (before != after) keys.emplace_back(key);
  };
  const config::ServerConfig& a = running.server;
  const config::ServerConfig& b = next.server;
  check("server.host", a.host, b.host);
  check("server.port", a.port, b.port);
  check("server.max_body_bytes", a.max_body_bytes, b.max_body_bytes);
  check("server.shutdown_grace_s", a.shutdown_grace_s, b.shutdown_grace_s);
  check("server.read_timeout_s", a.read_timeout_s, b.read_timeout_s);
  check("server.idle_timeout_s", a.idle_timeout_s, b.idle_timeout_s);
  check("server.threads", a.threads, b.threads);
  check("server.max_connections", a.max_connections, b.max_connections);
  check("ledger.url", running.ledger.url, next.ledger.url);
  check("ledger.retention_days", running.ledger.retention_days, next.ledger.retention_days);
  check("ledger.spool_path", running.ledger.spool_path, next.ledger.spool_path);
  check("ledger.spool_max_records", running.ledger.spool_max_records, next.ledger.spool_max_records);
  check("ledger.journal", running.ledger.journal, next.ledger.journal);
  check("telemetry.otlp_endpoint", running.telemetry.otlp_endpoint, next.telemetry.otlp_endpoint);
  check("telemetry.sample_ratio", running.telemetry.sample_ratio, next.telemetry.sample_ratio);
  check("telemetry.service_name", running.telemetry.service_name, next.telemetry.service_name);
  // The admission stage and the admin API are built once at start-up from these.
  const config::GovernanceConfig& g = running.governance;
  const config::GovernanceConfig& h = next.governance;
  check("governance.admin_key", g.admin_key, h.admin_key);  // the name only: never the value
  check("governance.on_insufficient", g.on_insufficient, h.on_insufficient);
  check("governance.mode", g.mode, h.mode);
  check("governance.allow_unpriced", g.allow_unpriced, h.allow_unpriced);
  check("governance.key_cache_ttl_s", g.key_cache_ttl_s, h.key_cache_ttl_s);
  return keys;
}

}  // namespace

ReloadPlan plan_reload(const config::Config& running, config::Config next) {
  ReloadPlan plan;
  plan.restart_required = restart_only_differences(running, next);
  if (running.providers != next.providers) plan.changed.emplace_back("providers");
  if (running.models != next.models) plan.changed.emplace_back("models");
  if (running.routing != next.routing) plan.changed.emplace_back("routing");
  if (running.server.api_keys != next.server.api_keys) plan.changed.emplace_back("server.api_keys");
  std::vector<std::string> api_keys = std::move(next.server.api_keys);
  next.server = running.server;
  next.server.api_keys = std::move(api_keys);
  next.ledger = running.ledger;
  next.telemetry = running.telemetry;
  next.governance = running.governance;
  plan.effective = std::move(next);
  return plan;
}

}  // namespace turnout::server
