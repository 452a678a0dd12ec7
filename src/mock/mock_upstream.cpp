#include "mock/mock_upstream.hpp"
#include <CLI/CLI.hpp>
namespace turnout::mock {
void add_mock_upstream_command(CLI::App& app, int& exit_code) {
  (void)app;
  (void)exit_code;
}
}  // namespace turnout::mock
