#pragma once
// The span exporter: finished traces go into a bounded queue and a background thread
// sends them in batches to the collector over OTLP/HTTP (JSON, POST {endpoint}/v1/traces).
// A call never waits for it: submit() takes a short lock to queue, and when the queue is
// full the trace is dropped and counted. Export failures (collector down, slow, non-2xx)
// drop that batch and are counted; nothing is retried, so a dead collector costs at most
// one bounded POST per batch on the exporter's own thread.
#include "common/result.hpp"
#include "tracing/call_trace.hpp"
#include "tracing/otlp_json.hpp"
#include "upstream/client.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace turnout::tracing {

struct ExporterOptions {
  std::string endpoint;  // telemetry.otlp_endpoint
  Resource resource;
  std::size_t max_queued_spans = 4096;
  std::size_t max_batch_spans = 512;
  std::chrono::milliseconds batch_delay{500};  // the longest a span waits for its batch
  std::chrono::milliseconds timeout{5000};     // one POST, connect included
};

struct ExporterCounters {
  std::uint64_t exported_spans = 0;  // accepted by the collector (2xx)
  std::uint64_t dropped_spans = 0;   // queue full, or their batch failed
  std::uint64_t failed_exports = 0;  // batches the collector did not accept
};

class Exporter {
 public:
  // Errors name telemetry.otlp_endpoint.
  static Result<std::unique_ptr<Exporter>> start(ExporterOptions options);
  ~Exporter();  // sends what is queued (one attempt per batch), then stops the thread
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  // Queues a finished trace, or drops it when the queue is full. Never waits for I/O.
  void submit(Trace trace);

  ExporterCounters counters() const;

 private:
  Exporter(ExporterOptions options, upstream::Endpoint endpoint);
  void run();
  std::vector<Trace> take_batch();     // under mutex_
  bool send(const std::vector<Trace>& batch, std::size_t spans);  // true: the collector took it

  const ExporterOptions options_;
  const upstream::Endpoint endpoint_;
  const std::shared_ptr<boost::asio::ssl::context> tls_ = upstream::make_client_tls_context();  // loaded once
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Trace> queue_;
  std::size_t queued_spans_ = 0;
  bool stopping_ = false;
  std::atomic<std::uint64_t> exported_spans_{0}, dropped_spans_{0}, failed_exports_{0};
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace turnout::tracing
