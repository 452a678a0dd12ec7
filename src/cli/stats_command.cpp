// `turnout stats` (docs/REFERENCE.md §1.4): the /stats JSON read straight from the ledger.
#include "cli/cli_support.hpp"
#include "cli/commands.hpp"

#include "admit/governance_report.hpp"
#include "governance/store.hpp"
#include "config/config.hpp"
#include "ledger/ledger.hpp"

#include <CLI/CLI.hpp>

#include <chrono>

#include <iostream>
#include <memory>

namespace turnout::cli {
namespace {

int run_stats(const std::string& config_file) {
  auto config = config::load_config(optional_path(config_file), config::process_env());
  if (!config) {
    std::cerr << "turnout: config error: " << config.error().message << "\n";
    return kExitUsage;
  }
  // The open replays journals a killed gateway left: with the config's retention, as serve
  // opens it, so a record retention already deleted is not brought back (and then counted
  // into the roll-ups a second time by the next fold).
  ledger::LedgerOptions options;
  options.retention = std::chrono::days(config->ledger.retention_days);
  options.delete_expired = false;  // a read: deleting is the gateway's job, on its own clock
  auto ledger = ledger::open_ledger(config->ledger.url, options);
  if (!ledger) {
    std::cerr << "turnout: ledger error (ledger.url): " << ledger.error().message << "\n";
    return kExitUsage;
  }
  // What the replay found (a damaged journal set aside, one left for a later try) goes to
  // stderr, as serve's start-up says it: stdout carries the JSON, and after this open the
  // next serve no longer sees a damaged journal it could report.
  for (const std::string& note : (*ledger)->open_notes()) std::cerr << "turnout: " << note << "\n";
  const ledger::FoldOutcome folded = ledger::wait_for_fold(**ledger, std::chrono::seconds(5));
  auto report = (*ledger)->stats(ledger::StatsQuery{});
  if (report && !folded.complete) report->rollups_stale = folded.problem;
  if (!report) {
    std::cerr << "turnout: cannot read the ledger: " << report.error().message << "\n";
    return kExitFailure;
  }
  std::string body = ledger::render_stats_json(*report);
  // The governance section of /stats (docs/REFERENCE.md §8.9): the database's figures.
  if (config->ledger.url != "sqlite::memory:") {
    auto store = governance::GovernanceStore::open(config->ledger.url);
    if (!store) {
      std::cerr << "turnout: cannot read the ledger: " << store.error().message << "\n";
      return kExitFailure;
    }
    auto activity = (*store)->activity(admit::kReportedScopes);
    if (!activity) {
      std::cerr << "turnout: cannot read the ledger: " << activity.error().message << "\n";
      return kExitFailure;
    }
    admit::append_governance_stats(body, *activity, {});
  }
  std::cout << body << "\n";
  (*ledger)->close();
  return kExitOk;
}

}  // namespace

void add_stats_command(CLI::App& app, int& exit_code) {
  auto stats_config = std::make_shared<std::string>();
  auto* stats = app.add_subcommand("stats", "Print the /stats JSON read straight from the ledger");
  stats->add_option("--config", *stats_config, "YAML config");
  stats->callback([stats_config, &exit_code] { exit_code = run_stats(*stats_config); });
}

}  // namespace turnout::cli
