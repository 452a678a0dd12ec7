#pragma once
// What an endpoint handler works with: the gateway's shared services (ledger, metrics,
// the slot holding the current config snapshot) and the call it is answering (the
// request, its connection, its exchange record, its thread's worker state and the config
// snapshot it was dispatched with). A snapshot is immutable and shared; a reload
// publishes a new one for later calls. Per-thread state lives in one WorkerState per
// event-loop thread and is only touched from that thread.
#include "admit/admission.hpp"
#include "common/clock.hpp"
#include "config/config.hpp"
#include "server/config_snapshot.hpp"
#include "ledger/ledger.hpp"
#include "listener/http_server.hpp"
#include "resilience/cooldown.hpp"
#include "resilience/retry_policy.hpp"
#include "server/chat_request.hpp"
#include "server/embeddings_request.hpp"
#include "server/responses_request.hpp"
#include "server/ledger_outbox.hpp"
#include "server/metrics.hpp"
#include "tracing/call_trace.hpp"
#include "tracing/exporter.hpp"
#include "upstream/client.hpp"

#include <boost/asio/thread_pool.hpp>
#include <simdjson.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>

namespace spdlog {
class logger;
}

namespace turnout::server {

namespace http = boost::beast::http;
using listener::Connection;
using listener::HttpRequest;
using listener::HttpResponse;
using Clock = std::chrono::steady_clock;

struct GatewayOptions {
  std::string instance_id;
  std::shared_ptr<spdlog::logger> access_log;  // one JSON line per request; may be null
  // Governance (virtual keys, budgets); null when the ledger cannot host it (sqlite::memory:).
  admit::Admission* admission = nullptr;
  governance::GovernanceStore* governance_store = nullptr;
  // Re-reads the config as start-up read it (file, environment, command-line overrides),
  // for POST /admin/v1/reload; null where there is no file to re-read.
  std::function<Result<config::Config>()> load_config;
  // Access-log lines lost so far (a stalled or failing stdout), for /metrics; null: not shown.
  std::function<std::uint64_t()> access_log_dropped_lines;
};

struct WorkerState {
  WorkerState(boost::asio::any_io_executor executor, std::shared_ptr<boost::asio::ssl::context> tls,
              std::shared_ptr<const upstream::ProxyConfig> proxy, ledger::Ledger& ledger)
      : client(executor, std::move(tls), std::move(proxy)),
        ledger_outbox(std::move(executor), ledger),
        rng(std::random_device{}()) {}
  upstream::Client client;
  LedgerOutbox ledger_outbox;  // this thread's records on their way to the ledger writer
  RequestParser request_parser;
  EmbeddingsRequestParser embeddings_parser;
  ResponsesRequestParser responses_parser;
  simdjson::dom::parser response_parser;  // upstream bodies; used between suspensions only
  std::mt19937_64 rng;
  SnapshotCache settings;  // this thread's copy of the current config snapshot
};

// What the access log and metrics learn about one request.
struct Exchange {
  Clock::time_point start = Clock::now();
  std::string request_id;
  std::string key_id;
  bool authenticated = false;  // a valid gateway key was presented (always, without gateway keys)
  std::string_view method;
  std::string_view path;
  std::string model;
  std::string route;
  std::uint64_t prompt_tokens = 0;
  std::uint64_t completion_tokens = 0;
  std::optional<pricing::Money> cost;
  unsigned attempts = 0;
  std::string error_type;
  Clock::duration upstream{};
  Clock::duration waiting{};  // backoff sleeps: neither upstream nor gateway work
  bool is_chat = false;
  unsigned stream_status = 200;  // streamed responses: the status the client saw (499: gone)
  std::shared_ptr<const admit::KeyGrant> grant;  // the virtual key the request presented
  std::vector<admit::Header> limit_headers;      // on every response to a limited key
  std::string hold_id;                           // the budget hold the call's record settles
  std::optional<std::uint64_t> clamped_output_tokens;  // on_insufficient: clamp; forwarded as max_completion_tokens
  tracing::CallTrace trace;      // chat calls while tracing is on (telemetry.otlp_endpoint)
};

struct Services {
  Services(std::shared_ptr<const ConfigSnapshot> initial, ledger::Ledger& ledger, GatewayOptions options);

  SnapshotSlot settings;  // the config snapshot new calls take (docs/REFERENCE.md §3.4)
  ledger::Ledger& ledger;
  const GatewayOptions options;
  Metrics metrics;
  // Null while tracing is off; started once (telemetry.* needs a restart to change).
  std::unique_ptr<tracing::Exporter> tracer;
  double trace_sample_ratio = 1.0;
  std::unique_ptr<boost::asio::thread_pool> blocking_pool;  // ledger reads (/stats)
  const Clock::time_point started = Clock::now();
  std::mutex reload_mutex;  // one reload at a time (reload.hpp)
};

struct Call {
  HttpRequest& request;
  Connection& connection;
  Exchange& exchange;
  WorkerState& worker;
  const ConfigSnapshot& settings;  // taken at dispatch; kept alive until the call has answered
  std::string_view path_id{};      // what the route's "{id}" segment matched
};

double ms_between(Clock::time_point a, Clock::time_point b);

// Time spent in the gateway itself: the request's age less upstream time and backoff sleeps.
std::int64_t overhead_us(const Exchange& exchange);

// A JSON response with the given status and body.
HttpResponse json_response(http::status status, unsigned version, std::string body);

}  // namespace turnout::server
