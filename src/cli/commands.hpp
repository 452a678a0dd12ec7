#pragma once
// Each subcommand registers itself on the CLI11 app; `exit_code` receives its result.
// The command line lives here alone: the stage libraries do not link CLI11.
namespace CLI {
class App;
}
namespace turnout::cli {
void add_serve_command(CLI::App& app, int& exit_code);          // serve_command.cpp
void add_route_command(CLI::App& app, int& exit_code);          // route_command.cpp
void add_stats_command(CLI::App& app, int& exit_code);          // stats_command.cpp
void add_tokens_command(CLI::App& app, int& exit_code);         // tokens_command.cpp
void add_ledger_command(CLI::App& app, int& exit_code);         // ledger_command.cpp
void add_mock_upstream_command(CLI::App& app, int& exit_code);  // mock_command.cpp
void add_keys_command(CLI::App& app, int& exit_code);           // governance_command.cpp
void add_teams_command(CLI::App& app, int& exit_code);          // governance_command.cpp
}  // namespace turnout::cli
