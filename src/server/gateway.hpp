#pragma once
// The gateway application: endpoint dispatch and the chat pipeline
//   parse -> count -> route -> upstream (retries, fallbacks) -> meter -> ledger -> respond.
// Config is immutable and shared; per-thread state (upstream pool, request parser, RNG)
// lives in one WorkerState per event-loop thread and is only touched from that thread.
#include "config/config.hpp"
#include "ledger/ledger.hpp"
#include "server/call_plan.hpp"
#include "server/http_server.hpp"
#include "server/metrics.hpp"
#include "upstream/client.hpp"

#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace spdlog {
class logger;
}

namespace turnout::server {

struct GatewayOptions {
  std::string instance_id;
  std::shared_ptr<spdlog::logger> access_log;  // one JSON line per request; may be null
};

class Gateway {
 public:
  // `executors`: one per event-loop thread, in HttpServer worker order.
  static Result<std::unique_ptr<Gateway>> create(const config::Config& config, ledger::Ledger& ledger,
                                                 std::vector<boost::asio::any_io_executor> executors,
                                                 GatewayOptions options);
  ~Gateway();

  boost::asio::awaitable<std::optional<HttpResponse>> handle(HttpRequest& request, Connection& connection);
  RejectionResponses rejections();

 private:
  struct WorkerState;
  struct Exchange;
  Gateway(const config::Config& config, ledger::Ledger& ledger, GatewayOptions options);

  boost::asio::awaitable<HttpResponse> handle_chat(Exchange& ex, HttpRequest& request, Connection& connection);
  boost::asio::awaitable<HttpResponse> handle_stats(Exchange& ex, const HttpRequest& request);
  HttpResponse handle_route(Exchange& ex, const HttpRequest& request, WorkerState& worker);
  HttpResponse handle_models(const HttpRequest& request) const;
  HttpResponse handle_health(const HttpRequest& request) const;
  HttpResponse handle_metrics(const HttpRequest& request) const;

  // The client key id for an authorised request; nullopt when the key is missing/wrong.
  std::optional<std::string> authenticate(const HttpRequest& request) const;
  boost::asio::awaitable<Result<void>> record(ledger::CallRecord record);
  void log_access(const Exchange& ex, unsigned status) const;

  const config::Config& config_;
  ledger::Ledger& ledger_;
  GatewayOptions options_;
  std::map<std::string, upstream::Endpoint, std::less<>> endpoints_;  // by provider name
  std::vector<std::pair<std::string, std::string>> api_keys_;          // key, key id
  std::vector<std::unique_ptr<WorkerState>> workers_;
  std::unique_ptr<boost::asio::thread_pool> blocking_pool_;  // ledger reads (/stats)
  Metrics metrics_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace turnout::server
