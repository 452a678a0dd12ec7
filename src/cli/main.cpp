// turnout: one binary, several subcommands (SPEC section 1).
#include "cli/commands.hpp"
#include "mock/mock_upstream.hpp"
#include "server/server.hpp"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  CLI::App app{"Turnout: a fast OpenAI-compatible LLM gateway with token-length routing"};
  app.set_version_flag("--version", std::string("turnout ") + TURNOUT_VERSION);
  app.require_subcommand(1);
  int exit_code = 0;
  turnout::server::add_server_commands(app, exit_code);
  turnout::cli::add_tokens_command(app, exit_code);
  turnout::cli::add_ledger_command(app, exit_code);
  turnout::mock::add_mock_upstream_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    // Usage errors exit 2 (SPEC section 1); --help and --version exit 0.
    return rc == 0 ? 0 : 2;
  }
  return exit_code;
}
