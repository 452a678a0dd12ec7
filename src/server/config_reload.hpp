#pragma once
// What a reload (SIGHUP) may change (docs/REFERENCE.md §3.8 Live reload). Prices,
// models, tiers, fallbacks, retries, providers and gateway keys take effect for calls
// dispatched after the reload; the listener (server.* but api_keys) and the ledger
// (ledger.*) and the trace exporter (telemetry.*) are bound at start-up, so a change
// there is reported as needing a restart and the running values are kept.
#include "config/config.hpp"

#include <string>
#include <vector>

namespace turnout::server {

struct ReloadPlan {
  config::Config effective;                   // the new config with the start-up-only settings kept
  std::vector<std::string> changed;           // coarse: "providers", "models", "routing", "server.api_keys"
  std::vector<std::string> restart_required;  // key paths whose change was ignored, e.g. "server.port"
};

ReloadPlan plan_reload(const config::Config& running, config::Config next);

}  // namespace turnout::server
