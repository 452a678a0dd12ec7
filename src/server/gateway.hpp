#pragma once
// The gateway application: endpoint dispatch and the chat pipeline
//   parse -> count -> route -> upstream (retries, fallbacks) -> meter -> ledger -> respond.
// Config is immutable and shared; per-thread state (upstream pool, request parser, RNG)
// lives in one WorkerState per event-loop thread and is only touched from that thread.
#include "config/config.hpp"
#include "ledger/ledger.hpp"
#include "server/call_plan.hpp"
#include "server/cooldown.hpp"
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

// The result of the attempts (retries and fallbacks) for one call.
struct CallOutcome {
  const routing::Candidate* served = nullptr;  // the model of the last attempt
  std::string route;                           // its route (fallback:<primary> for fallbacks)
  std::optional<upstream::Response> response;  // last complete upstream response, if any
  std::optional<upstream::Failure> failure;    // or the last failure
  std::optional<upstream::ResponseStream> stream;  // streaming: the open upstream stream
  std::string stream_prefix;  // streaming: bytes read before committing (>= one whole event)
  unsigned retries = 0;
  unsigned fallbacks = 0;
};

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

  boost::asio::awaitable<std::optional<HttpResponse>> handle_chat(Exchange& ex, HttpRequest& request,
                                                                  Connection& connection);
  boost::asio::awaitable<CallOutcome> run_attempts(Exchange& ex, WorkerState& worker, const CallPlan& plan,
                                                   std::string_view body);
  // The routed model and its fallbacks, less those cooling down (all of them cooling
  // down: the routed model alone).
  std::vector<const routing::Candidate*> candidates_to_try(const CallPlan& plan) const;
  // Feeds the cooldown table with one attempt's outcome.
  void record_attempt_outcome(const routing::Candidate& candidate, bool retryable_failure);
  // One attempt each; true when the outcome may be retried.
  boost::asio::awaitable<bool> attempt_buffered(WorkerState& worker, const upstream::Request& call, CallOutcome& out);
  boost::asio::awaitable<bool> attempt_stream(WorkerState& worker, const upstream::Request& call,
                                              const config::ProviderConfig& provider, CallOutcome& out);
  // Relays an open upstream stream to the client as server-sent events; fills `rec`.
  boost::asio::awaitable<void> relay_stream(Exchange& ex, Connection& connection, WorkerState& worker,
                                            const CallPlan& plan, CallOutcome& outcome, ledger::CallRecord& rec);
  boost::asio::awaitable<void> record_durably(const Exchange& ex, ledger::CallRecord rec);
  HttpResponse upstream_error_response(WorkerState& worker, upstream::Response& response, unsigned version);
  static std::string upstream_error_type(unsigned status);
  static ApiError failure_error(const std::optional<upstream::Failure>& failure);
  static HttpResponse failure_response(const std::optional<upstream::Failure>& failure, unsigned version);
  static std::string failure_error_type(const std::optional<upstream::Failure>& failure);
  std::optional<pricing::Money> baseline_cost(const pricing::Usage& usage) const;
  std::int64_t overhead_us(const Exchange& ex) const;
  void finish_metrics(const Exchange& ex, const CallOutcome& outcome, unsigned status);
  boost::asio::awaitable<HttpResponse> handle_stats(Exchange& ex, const HttpRequest& request);
  HttpResponse handle_route(Exchange& ex, const HttpRequest& request, WorkerState& worker);
  HttpResponse handle_models(const HttpRequest& request) const;
  HttpResponse handle_health(const HttpRequest& request) const;
  void append_cooldowns_json(std::string& body) const;  // ,"cooldowns":{model:{until,failures}}
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
  ModelCooldowns cooldowns_;  // shared by every event-loop thread
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace turnout::server
