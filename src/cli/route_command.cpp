// `turnout route` (docs/REFERENCE.md §1.2): the routing decision for a chat request read
// from a file or stdin, the same JSON as POST /route; nothing is called.
#include "cli/cli_support.hpp"
#include "cli/commands.hpp"
#include "server/call_plan.hpp"

#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

namespace turnout::cli {
using namespace turnout::server;
namespace {

int run_route(const std::string& config_file, const std::string& input_file) {
  auto config = config::load_config(optional_path(config_file), config::process_env());
  if (!config) {
    std::cerr << "turnout: config error: " << config.error().message << "\n";
    return kExitUsage;
  }
  auto body = read_input(input_file);
  if (!body) {
    std::cerr << "turnout: cannot read " << input_file << "\n";
    return kExitUsage;
  }
  RequestParser parser;
  auto planned = plan_call(*config, parser, *body);
  if (auto* error = std::get_if<ApiError>(&planned)) {
    std::cout << error_body(*error) << "\n";
    return kExitFailure;
  }
  std::cout << route_json(std::get<CallPlan>(planned)) << "\n";
  return kExitOk;
}

}  // namespace

void add_route_command(CLI::App& app, int& exit_code) {
  auto route_config = std::make_shared<std::string>();
  auto route_input = std::make_shared<std::string>();
  auto* route = app.add_subcommand("route", "Print the routing decision for a chat request (calls nothing)");
  route->add_option("--config", *route_config, "YAML config");
  route->add_option("file", *route_input, "Chat request JSON (default: stdin)");
  route->callback([route_config, route_input, &exit_code] { exit_code = run_route(*route_config, *route_input); });
}

}  // namespace turnout::cli
