#pragma once
namespace CLI {
class App;
}
namespace turnout::server {
// Adds `serve`, `route` and `stats` subcommands.
void add_server_commands(CLI::App& app, int& exit_code);
}  // namespace turnout::server
