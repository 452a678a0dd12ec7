#include "server/reload.hpp"

#include "common/clock.hpp"
#include "common/json_text.hpp"
#include "server/config_reload.hpp"

#include <spdlog/logger.h>

#include <algorithm>
#include <mutex>

namespace turnout::server {
namespace {

void append_list(std::string& line, const std::vector<std::string>& items) {
  line.push_back('[');
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) line.push_back(',');
    append_json_string(line, items[i]);
  }
  line.push_back(']');
}

void log_outcome(Services& services, const ReloadOutcome& outcome) {
  if (!services.options.access_log) return;
  std::string line = R"({"event":"config_reload","result":)";
  if (!outcome.applied) {
    line += R"("failure","error":)";
    append_json_string(line, outcome.error + " (the running config stays in effect)");
    line.push_back('}');
    services.options.access_log->error(line);
    return;
  }
  line += R"("success","config":)";
  append_json_string(line, outcome.config);
  line += R"(,"changed":)";
  append_list(line, outcome.changed);
  line += R"(,"restart_required":)";
  append_list(line, outcome.restart_required);
  line.push_back('}');
  if (outcome.restart_required.empty()) {
    services.options.access_log->info(line);
  } else {
    services.options.access_log->warn(line);
  }
}

}  // namespace

ReloadOutcome apply_reload(Services& services, Result<config::Config> loaded) {
  std::lock_guard lock(services.reload_mutex);  // each reload builds on the snapshot it replaces
  ReloadOutcome outcome;
  std::uint64_t generation = 0;
  const std::shared_ptr<const ConfigSnapshot> running = services.settings.load(generation);
  if (!loaded) {
    outcome.error = loaded.error().message;
  } else {
    ReloadPlan plan = plan_reload(running->config, std::move(*loaded));
    auto next = build_snapshot(std::move(plan.effective), services.ledger.installation_secret(), running.get());
    if (!next) {
      outcome.error = next.error().message;
    } else {
      outcome.applied = true;
      outcome.config = (*next)->config.source;
      outcome.changed = std::move(plan.changed);
      outcome.restart_required = std::move(plan.restart_required);
      services.settings.publish(std::move(*next));
    }
  }
  services.metrics.record_config_reload(outcome.applied, unix_now());
  log_outcome(services, outcome);
  return outcome;
}

std::string config_error_key_path(std::string_view message) {
  // "<file>[:line:col]: <key path>: <problem>"; the file position has no ": ".
  const std::size_t first = message.find(": ");
  if (first == std::string_view::npos) return "";
  const std::string_view rest = message.substr(first + 2);
  const std::size_t second = rest.find(": ");
  if (second == std::string_view::npos || second == 0) return "";
  const std::string_view path = rest.substr(0, second);
  const bool key_like = std::all_of(path.begin(), path.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '[' || c == ']' || c == '-';
  });
  return key_like ? std::string(path) : "";
}

}  // namespace turnout::server
