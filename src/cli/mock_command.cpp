// `turnout mock-upstream`: a local OpenAI-compatible simulator (docs/REFERENCE.md §7) used by
// demos, integration tests and benchmarks in place of the provider.
#include "cli/commands.hpp"
#include "mock/mock_server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <memory>

namespace turnout::cli {
using namespace turnout::mock;
namespace {

struct CommandOptions {
  ServerOptions server;
  MockSettings settings;
};

void add_server_options(CLI::App& cmd, CommandOptions& o) {
  cmd.add_option("--host", o.server.host, "address to listen on")->capture_default_str();
  cmd.add_option("--port", o.server.port, "port to listen on (0 picks a free one)")->capture_default_str();
  cmd.add_option("--threads", o.server.threads, "event-loop threads")->capture_default_str();
  cmd.add_option("--max-recorded", o.server.recording.max_requests,
                 "requests kept for GET /_mock/requests (0 records nothing)")
      ->capture_default_str();
}

void add_reply_options(CLI::App& cmd, ReplySettings& r) {
  cmd.add_option("--chunks", r.chunks, "content chunks per streamed choice")->capture_default_str();
  cmd.add_option("--chunk-delay-ms", r.chunk_delay_ms, "pause before each streamed chunk")->capture_default_str();
  cmd.add_option("--completion-words,--completion-tokens", r.completion_words,
                 "pad each answer to this many words (0: no padding)");
  cmd.add_option("--cached-tokens", r.cached_tokens, "usage.prompt_tokens_details.cached_tokens to report");
}

void add_fault_options(CLI::App& cmd, FaultSettings& f) {
  cmd.add_option("--fault-models", f.fault_models, "limit latency and faults to these models (comma-separated)")
      ->delimiter(',');
  cmd.add_option("--latency-ms", f.latency_ms, "fixed delay before each answer");
  cmd.add_option("--latency-jitter-ms", f.latency_jitter_ms, "extra random delay, uniform in [0, J]");
  cmd.add_option_function<unsigned>(
      "--fail-status", [&f](const unsigned& status) { f.fail_status = status; },
      "answer with this HTTP status and an OpenAI error body");
  cmd.add_option_function<double>(
      "--fail-rate", [&f](const double& rate) { f.fail_rate = rate; }, "share of calls that get the faults (0..1)");
  cmd.add_option_function<std::uint64_t>(
      "--fail-first", [&f](const std::uint64_t& n) { f.fail_first = n; },
      "the first N calls get the faults, later ones succeed");
  cmd.add_option("--retry-after", f.retry_after, "Retry-After header value sent with failures");
  cmd.add_flag("--hang", f.hang, "accept calls and never answer");
  cmd.add_option_function<std::uint32_t>(
      "--reset-after-chunks", [&f](const std::uint32_t& k) { f.reset_after_chunks = k; },
      "streams: send K events, then reset the TCP connection");
  cmd.add_option_function<std::uint32_t>(
      "--stall-after-chunks", [&f](const std::uint32_t& k) { f.stall_after_chunks = k; },
      "streams: send K events, then go silent with the connection open");
  cmd.add_flag("--malformed", f.malformed, "200 with a truncated body; streams get an invalid event");
  cmd.add_flag("--html-error", f.html_error, "fail with an HTML error page (502 unless --fail-status)");
  cmd.add_flag("--no-usage", f.no_usage, "streams never send a usage chunk");
}

// Serves until SIGINT or SIGTERM; returns the process exit code.
int run(const CommandOptions& options) {
  if (auto valid = validate_settings(options.settings); !valid) {
    std::fprintf(stderr, "turnout mock-upstream: %s\n", valid.error().message.c_str());
    return 2;
  }
  boost::asio::io_context signals_io;
  boost::asio::signal_set signals(signals_io, SIGINT, SIGTERM);
  auto server = MockServer::start(options.server, options.settings);
  if (!server) {
    std::fprintf(stderr, "turnout mock-upstream: %s\n", server.error().message.c_str());
    return 1;
  }
  // Tests started with --port 0 read the chosen port from this line.
  std::fputs(fmt::format("{{\"event\":\"listening\",\"host\":\"{}\",\"port\":{}}}\n", (*server)->host(),
                         (*server)->port())
                 .c_str(),
             stdout);
  std::fflush(stdout);
  signals.async_wait([](const boost::system::error_code&, int) {});
  signals_io.run();
  (*server)->stop();
  return 0;
}

}  // namespace

void add_mock_upstream_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<CommandOptions>();
  auto* cmd = app.add_subcommand("mock-upstream",
                                 "run a local OpenAI-compatible simulator with fault injection (no API key needed)");
  add_server_options(*cmd, *options);
  add_reply_options(*cmd, options->settings.reply);
  add_fault_options(*cmd, options->settings.faults);
  cmd->callback([options, &exit_code] { exit_code = run(*options); });
}

}  // namespace turnout::cli
