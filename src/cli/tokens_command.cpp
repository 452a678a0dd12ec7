#include "cli/commands.hpp"
#include <CLI/CLI.hpp>
namespace turnout::cli {
void add_tokens_command(CLI::App& app, int& exit_code) {
  (void)app;
  (void)exit_code;
}
}  // namespace turnout::cli
