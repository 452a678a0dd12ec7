// `turnout ledger export --format jsonl|csv [--since T] [--until T] [--config FILE]`:
// every ledger record, oldest first, on stdout.
#include "cli/commands.hpp"
#include "config/config.hpp"
#include "ledger/ledger_export.hpp"
#include "common/time_text.hpp"

#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace turnout::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct ExportOptions {
  std::string format;
  std::optional<std::string> since;  // nullopt: unbounded
  std::optional<std::string> until;
  std::string config_file;  // empty: the default resolution of `turnout serve`
};

const std::map<std::string, ledger::ExportFormat>& export_formats() {
  static const std::map<std::string, ledger::ExportFormat> formats{
      {"jsonl", ledger::ExportFormat::jsonl},
      {"csv", ledger::ExportFormat::csv},
  };
  return formats;
}

// A window bound as /stats reads it (unix seconds or RFC 3339); false after reporting a
// value that is neither.
bool read_window_bound(const std::string& option, const std::optional<std::string>& text,
                       std::optional<double>& bound) {
  if (!text) {
    return true;
  }
  bound = parse_time_param(*text);
  if (!bound) {
    std::cerr << "turnout ledger export: invalid " << option << " '" << *text
              << "': expected unix seconds or an RFC 3339 time (e.g. 2026-11-26T15:30:00Z)\n";
    return false;
  }
  return true;
}

int run_export(const ExportOptions& options) {
  ledger::ExportQuery query;
  if (!read_window_bound("--since", options.since, query.since) ||
      !read_window_bound("--until", options.until, query.until)) {
    return kExitUsage;
  }
  std::optional<std::filesystem::path> config_path;
  if (!options.config_file.empty()) {
    config_path = options.config_file;
  }
  auto config = config::load_config(config_path, config::process_env());
  if (!config) {
    std::cerr << "turnout: config error: " << config.error().message << "\n";
    return kExitUsage;
  }
  // Only stdout is written; unsynchronised, it buffers like a file stream.
  std::ios::sync_with_stdio(false);
  auto exported = ledger::export_ledger(config->ledger.url, query, export_formats().at(options.format), std::cout);
  if (!exported) {
    std::cerr << "turnout ledger export: " << exported.error().message << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void add_ledger_command(CLI::App& app, int& exit_code) {
  CLI::App* ledger = app.add_subcommand("ledger", "Read the ledger directly");
  ledger->require_subcommand(1);

  auto options = std::make_shared<ExportOptions>();
  CLI::App* command = ledger->add_subcommand(
      "export", "Print every ledger record, oldest first, as JSON Lines or CSV (--since inclusive, --until exclusive)");
  command->add_option("--format", options->format, "jsonl (one JSON object per line) or csv (with a header line)")
      ->required()
      ->check(CLI::IsMember(export_formats()));
  command->add_option("--since", options->since, "only records at or after this time (unix seconds or RFC 3339)");
  command->add_option("--until", options->until, "only records before this time (unix seconds or RFC 3339)");
  command->add_option("--config", options->config_file,
                      "YAML config naming the ledger (default: ./turnout.yaml if present, else built-in defaults)");
  command->callback([options, &exit_code] { exit_code = run_export(*options); });
}

}  // namespace turnout::cli
