#pragma once
// `turnout mock-upstream`: a local OpenAI-compatible simulator (SPEC section 7) used by
// demos, integration tests and benchmarks in place of the provider.
namespace CLI {
class App;
}
namespace turnout::mock {
// Adds the `mock-upstream` subcommand (options and callback) to the CLI.
void add_mock_upstream_command(CLI::App& app, int& exit_code);
}  // namespace turnout::mock
