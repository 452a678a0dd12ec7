#include "server/server.hpp"
#include <CLI/CLI.hpp>
namespace turnout::server {
void add_server_commands(CLI::App& app, int& exit_code) {
  (void)app;
  (void)exit_code;
}
}  // namespace turnout::server
