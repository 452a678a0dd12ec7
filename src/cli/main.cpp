// turnout: one binary, several subcommands (docs/REFERENCE.md §1).
#include "cli/commands.hpp"

#include <CLI/CLI.hpp>

#include <cerrno>

#include <fcntl.h>
#include <unistd.h>

namespace {

// A descriptor 0-2 the caller closed (`turnout serve >&-`) is opened on /dev/null first:
// otherwise the first file or socket opened later (a ledger, a PostgreSQL connection) would
// take its number and receive what is written to stdout or stderr.
void open_closed_standard_descriptors() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    const int opened = ::open("/dev/null", O_RDWR);  // the lowest free number: fd
    if (opened >= 0 && opened != fd) ::close(opened);
  }
}

}  // namespace

int main(int argc, char** argv) {
  open_closed_standard_descriptors();
  CLI::App app{"Turnout: a fast OpenAI-compatible LLM gateway with token-length routing"};
  app.set_version_flag("--version", std::string("turnout ") + TURNOUT_VERSION);
  app.require_subcommand(1);
  int exit_code = 0;
  turnout::cli::add_serve_command(app, exit_code);
  turnout::cli::add_route_command(app, exit_code);
  turnout::cli::add_stats_command(app, exit_code);
  turnout::cli::add_tokens_command(app, exit_code);
  turnout::cli::add_ledger_command(app, exit_code);
  turnout::cli::add_mock_upstream_command(app, exit_code);
  turnout::cli::add_keys_command(app, exit_code);
  turnout::cli::add_teams_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    // Usage errors exit 2 (docs/REFERENCE.md §1); --help and --version exit 0.
    return rc == 0 ? 0 : 2;
  }
  return exit_code;
}
