#pragma once
// Applying a re-read config (docs/REFERENCE.md §3.8 Live reload), the one code path of
// SIGHUP and POST /admin/v1/reload: a valid config becomes the snapshot of every call
// dispatched from now on while calls in flight finish on theirs; an error (or a config
// that cannot be built) is refused and the running one stays. Logs one line either way
// and counts it in /metrics. Safe from any thread.
#include "server/services.hpp"

#include <string>
#include <vector>

namespace turnout::server {

struct ReloadOutcome {
  bool applied = false;
  std::string error;   // when refused: the config error, with its file position and key path
  std::string config;  // when applied: the file read ("" for the built-in defaults)
  std::vector<std::string> changed;           // coarse: "providers", "models", "routing", ...
  std::vector<std::string> restart_required;  // key paths whose change was ignored
};

ReloadOutcome apply_reload(Services& services, Result<config::Config> loaded);

// The key path a config error names ("routing.tiers[1].model" from
// "turnout.yaml:7:5: routing.tiers[1].model: ..."); "" when it names none.
std::string config_error_key_path(std::string_view message);

}  // namespace turnout::server
