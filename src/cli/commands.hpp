#pragma once
// Each subcommand registers itself on the CLI11 app; `exit_code` receives its result.
namespace CLI {
class App;
}
namespace turnout::cli {
void add_tokens_command(CLI::App& app, int& exit_code);  // tokens_command.cpp
void add_ledger_command(CLI::App& app, int& exit_code);  // ledger_command.cpp
}  // namespace turnout::cli
