// `turnout serve` (docs/REFERENCE.md §1.1): the gateway.
#include "cli/cli_support.hpp"
#include "cli/commands.hpp"

#include "admit/admission.hpp"
#include "admit/hold_sweeper.hpp"
#include "admit/lease_keeper.hpp"
#include "admit/lease_pool.hpp"
#include "governance/change_listener.hpp"
#include "config/config.hpp"
#include "governance/store.hpp"
#include "ledger/ledger.hpp"
#include "server/batched_log_sink.hpp"
#include "server/gateway.hpp"
#include "listener/http_server.hpp"
#include "tokenizer/tokenizer.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>
#include <spdlog/logger.h>
#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>

namespace turnout::cli {
using namespace turnout::server;
using listener::HttpServer;
using listener::HttpServerOptions;
using listener::RejectionResponses;
namespace {

// How often each replica charges expired holds (docs/REFERENCE.md §8.4).
constexpr std::chrono::seconds kHoldSweepInterval{5};

// Writes `text` to fd if it takes it now, never waiting: fd may be a pipe whose reader
// stopped (stderr shared with a stalled stdout, `2>&1`), and the exit must not wait on it.
// Setting O_NONBLOCK on fd itself would change the description the parent shares, so a pipe
// or terminal is reopened through /proc with O_NONBLOCK, and a socket is sent to with
// MSG_DONTWAIT; a regular file's write does not wait on a reader. Where the reopen is refused
// (stderr owned by another user, as under `docker --user`; no /proc), the line is written
// only if poll(2) says the descriptor takes it now: a small window remains there in which a
// left-behind writer on the same pipe takes the space first.
void write_without_blocking(int fd, std::string_view text) {
  struct stat status {};
  if (::fstat(fd, &status) != 0) return;
  if (S_ISREG(status.st_mode)) {
    (void)!::write(fd, text.data(), text.size());
  } else if (S_ISSOCK(status.st_mode)) {
    (void)!::send(fd, text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  } else {
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    const int own = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (own >= 0) {
      (void)!::write(own, text.data(), text.size());
      ::close(own);
    } else if (errno != ENXIO) {  // ENXIO: a FIFO with no reader, nobody to tell
      pollfd ready{fd, POLLOUT, 0};
      if (::poll(&ready, 1, 100) == 1 && (ready.revents & POLLOUT) != 0) (void)!::write(fd, text.data(), text.size());
    }
  }
}

std::string make_instance_id() {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  std::random_device rd;
  return fmt::format("{}-{}-{:06x}", host, getpid(), rd() & 0xffffff);
}

struct ServeOptions {
  std::string config_file;
  std::string host;
  int port = -1;
};

// The config file (or ./turnout.yaml, or the defaults) with the command line's overrides:
// what start-up and every reload read, so that a reload compares like with like.
Result<config::Config> load_serve_config(const ServeOptions& opts) {
  auto loaded = config::load_config(optional_path(opts.config_file), config::process_env());
  if (!loaded) return loaded;
  if (!opts.host.empty()) loaded->server.host = opts.host;
  if (opts.port >= 0) loaded->server.port = static_cast<std::uint16_t>(opts.port);
  return loaded;
}

// SIGHUP re-reads the config (docs/REFERENCE.md §3.8), on the thread the signal is
// delivered on: reading and checking a config file takes well under a millisecond.
void reload_on_sighup(boost::asio::signal_set& hangup, const ServeOptions& opts, Gateway& gateway) {
  hangup.async_wait([&hangup, &opts, &gateway](const boost::system::error_code& ec, int) {
    if (ec) return;
    gateway.reload(load_serve_config(opts));
    reload_on_sighup(hangup, opts, gateway);
  });
}

int run_serve(const ServeOptions& opts) {
  if (opts.port > 65535) {
    std::cerr << "turnout: --port must be 0-65535\n";
    return kExitUsage;
  }
  auto loaded = load_serve_config(opts);
  if (!loaded) {
    std::cerr << "turnout: config error: " << loaded.error().message << "\n";
    return kExitUsage;
  }
  config::Config config = std::move(*loaded);

  // Access log: one JSON line per request on stdout, written in batches by the sink's
  // background thread (server/batched_log_sink.hpp), off the event loops. The sink writes
  // each message's text as its line: no pattern, no level or time prefix.
  // A stdout pipe whose reader went away must cost the access log's lines, not the
  // gateway: write(2) then fails with EPIPE instead of raising SIGPIPE. (Sockets already
  // send with MSG_NOSIGNAL.)
  std::signal(SIGPIPE, SIG_IGN);
  const auto access_sink = std::make_shared<BatchedLogSink>(STDOUT_FILENO);
  auto access_log = std::make_shared<spdlog::logger>("access", access_sink);

  ledger::LedgerOptions ledger_options;
  ledger_options.retention = std::chrono::days(config.ledger.retention_days);
  ledger_options.spool_path = config.ledger.spool_path;
  ledger_options.spool_max_records = config.ledger.spool_max_records;
  ledger_options.journal = config.ledger.journal;
  auto ledger = ledger::open_ledger(config.ledger.url, ledger_options);
  if (!ledger) {
    std::cerr << "turnout: ledger error (ledger.url): " << ledger.error().message << "\n";
    return kExitUsage;
  }
  for (const std::string& note : (*ledger)->open_notes()) std::cerr << "turnout: " << note << "\n";
  // Governance works on the same database through its own connection; a private
  // in-memory ledger has no second connection, so virtual keys are then refused.
  std::unique_ptr<governance::GovernanceStore> governance_store;
  std::unique_ptr<admit::LeasePool> lease_pool;  // lease mode only; outlives every user of the admission
  std::unique_ptr<admit::Admission> admission;
  std::unique_ptr<governance::GovernanceStore> hold_sweeper_store;
  std::unique_ptr<admit::HoldSweeper> hold_sweeper;  // declared after its store: stopped first
  std::unique_ptr<governance::ChangeListener> change_listener;  // stopped before the cache it evicts from
  std::unique_ptr<admit::LeaseKeeper> lease_keeper;  // lease mode: stopped first, its pool still there
  if (config.ledger.url != "sqlite::memory:") {
    // The ledger writer checkpoints the WAL (between its rounds); these connections leave
    // it to it, so no hold commit on the request path runs one.
    auto store = governance::GovernanceStore::open(config.ledger.url, governance::WalCheckpoints::by_ledger_writer);
    if (!store) {
      std::cerr << "turnout: ledger error (ledger.url, governance): " << store.error().message << "\n";
      return kExitUsage;
    }
    governance_store = std::move(*store);
    admit::AdmitSettings admit_settings;
    admit_settings.allow_unpriced = config.governance.allow_unpriced;
    admit_settings.clamp_output = config.governance.on_insufficient == config::OnInsufficient::clamp;
    admit_settings.key_cache_ttl =
        std::chrono::milliseconds(static_cast<long long>(config.governance.key_cache_ttl_s * 1000));
    admission = std::make_unique<admit::Admission>(*governance_store, admit_settings);
    if (config.governance.mode == config::GovernanceMode::lease) {
      const auto ms = [](double seconds) { return std::chrono::milliseconds(static_cast<long long>(seconds * 1000)); };
      lease_pool = std::make_unique<admit::LeasePool>(
          *governance_store, admit::LeaseSettings{config.governance.lease_slice_pico, ms(config.governance.lease_ttl_s),
                                                  ms(config.governance.lease_idle_s)});
      admission->use_leases(*lease_pool);
      lease_keeper = std::make_unique<admit::LeaseKeeper>(
          *lease_pool, std::clamp(ms(config.governance.lease_idle_s) / 2, std::chrono::milliseconds(50),
                                  std::chrono::milliseconds(1000)));
    }
    // Its own connection, so a sweep never waits on (or delays) an admission.
    auto sweeper_store =
        governance::GovernanceStore::open(config.ledger.url, governance::WalCheckpoints::by_ledger_writer);
    if (!sweeper_store) {
      std::cerr << "turnout: ledger error (ledger.url, governance): " << sweeper_store.error().message << "\n";
      return kExitUsage;
    }
    hold_sweeper_store = std::move(*sweeper_store);
    hold_sweeper = std::make_unique<admit::HoldSweeper>(*hold_sweeper_store, kHoldSweepInterval,
                                                        [access_log](std::uint64_t charged) {
                                                          access_log->info(R"({{"event":"holds_expired","charged":{}}})",
                                                                           charged);
                                                        });
    // PostgreSQL: an admin write on any replica (or the CLI) evicts the key here at once.
    admit::Admission* cache = admission.get();
    auto listener = governance::ChangeListener::start(config.ledger.url, [cache](std::string_view scope) {
      if (scope.starts_with("key:")) cache->forget(std::string(scope.substr(4)));
      if (scope.starts_with("team:")) cache->forget_team(std::string(scope.substr(5)));
    });
    if (!listener) {
      std::cerr << "turnout: ledger error (ledger.url, governance): " << listener.error().message << "\n";
      return kExitUsage;
    }
    change_listener = std::move(*listener);
  }
  // Build both vocabularies now, so the first request does not pay for it.
  tokenizer::Encoding::preload_all();

  HttpServerOptions http_options;
  http_options.host = config.server.host;
  http_options.port = config.server.port;
  http_options.threads = config.server.threads ? config.server.threads : std::max(1u, std::thread::hardware_concurrency());
  http_options.max_body_bytes = config.server.max_body_bytes;
  http_options.max_connections = config.server.max_connections;
  http_options.read_timeout = std::chrono::milliseconds(static_cast<long long>(config.server.read_timeout_s * 1000));
  http_options.idle_timeout = std::chrono::milliseconds(static_cast<long long>(config.server.idle_timeout_s * 1000));

  std::unique_ptr<Gateway> gateway;
  auto server = std::make_unique<HttpServer>(
      http_options,
      [&gateway](HttpRequest& req, Connection& conn) { return gateway->handle(req, conn); },
      RejectionResponses{});
  std::vector<boost::asio::any_io_executor> executors;
  for (unsigned i = 0; i < server->threads(); ++i) executors.push_back(server->worker_context(i).get_executor());
  GatewayOptions gateway_options{make_instance_id(), access_log, admission.get(), governance_store.get(),
                                 [&opts] { return load_serve_config(opts); },
                                 [access_sink] { return access_sink->dropped_lines(); }};
  auto created = Gateway::create(config, **ledger, executors, gateway_options);
  if (!created) {
    std::cerr << "turnout: config error: " << created.error().message << "\n";
    return kExitUsage;
  }
  gateway = std::move(*created);
  server->set_rejections(gateway->rejections());
  // Each loop took its journal file with the gateway: a loop without one is said once here
  // (and in /health's ledger text while it lasts), never silently slower.
  if (const std::string degraded = (*ledger)->health().degraded; degraded.find("hand-off off") != std::string::npos) {
    std::cerr << "turnout: " << degraded << "\n";
  }

  // Signals are caught before the listening line is printed: a SIGTERM sent as soon as
  // that line appears must drain, not kill.
  const auto grace = std::chrono::milliseconds(static_cast<long long>(config.server.shutdown_grace_s * 1000));
  auto hangup = std::make_unique<boost::asio::signal_set>(server->worker_context(0), SIGHUP);
  reload_on_sighup(*hangup, opts, *gateway);
  auto signals = std::make_unique<boost::asio::signal_set>(server->worker_context(0), SIGINT, SIGTERM);
  signals->async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    access_log->info(R"({{"event":"shutdown","signal":{},"in_flight":{}}})", signal, server->in_flight());
    hangup->cancel();
    server->stop(grace);
  });
  std::uint16_t port = 0;
  if (auto error = server->listen(port)) {
    std::cerr << "turnout: " << *error << "\n";
    return kExitFailure;
  }
  const auto openai = config.find_provider("openai");
  access_log->info(
      R"({{"event":"listening","host":"{}","port":{},"threads":{},"config":"{}","ledger":"{}","upstream":"{}"}})",
      config.server.host, port, server->threads(), config.source,
      config.ledger.url.rfind("sqlite:", 0) == 0 ? config.ledger.url : "postgresql",
      openai ? openai->base_url : "");

  // Returns once every call has finished, or was cancelled at the end of the grace and
  // has answered and appended its record (bounded by cancel_wait).
  server->run();
  // Then, in this order: every record is handed to the ledger and committed (or spooled); the upstream
  // connections idle in the pools are closed; whatever a handler left suspended is
  // destroyed with the event loops, while the gateway it refers to is still alive; the
  // gateway goes last.
  gateway->hand_over_held_records();
  (*ledger)->close();
  lease_keeper.reset();  // lease mode: every lease's unused part goes back, its calls settled
  gateway->close_idle_connections();
  signals.reset();
  hangup.reset();
  server.reset();
  gateway.reset();
  access_log->info(R"({"event":"stopped"})");
  // Bounded: a stalled stdout's writer is left behind. Lost lines are said on stderr, but
  // only if stderr takes the line at once: it may be the stalled stdout's pipe (2>&1).
  const std::string lost = access_sink->stop().summary();
  if (!lost.empty()) write_without_blocking(STDERR_FILENO, lost);
  spdlog::shutdown();
  return kExitOk;
}

}  // namespace

void add_serve_command(CLI::App& app, int& exit_code) {
  auto serve_opts = std::make_shared<ServeOptions>();
  auto* serve = app.add_subcommand("serve", "Run the gateway");
  serve->add_option("--config", serve_opts->config_file, "YAML config (default: ./turnout.yaml if present, else built-in defaults)");
  serve->add_option("--host", serve_opts->host, "Listen address (overrides server.host)");
  serve->add_option("--port", serve_opts->port, "Listen port (overrides server.port; 0 picks a free port)");
  serve->callback([serve_opts, &exit_code] { exit_code = run_serve(*serve_opts); });
}

}  // namespace turnout::cli
