#include "tracing/exporter.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <optional>
#include <utility>

namespace turnout::tracing {
namespace asio = boost::asio;

Result<std::unique_ptr<Exporter>> Exporter::start(ExporterOptions options) {
  auto endpoint = upstream::parse_base_url(options.endpoint);
  if (!endpoint) return make_error("telemetry.otlp_endpoint: " + endpoint.error().message);
  return std::unique_ptr<Exporter>(new Exporter(std::move(options), std::move(*endpoint)));
}

Exporter::Exporter(ExporterOptions options, upstream::Endpoint endpoint)
    : options_(std::move(options)), endpoint_(std::move(endpoint)), thread_([this] { run(); }) {}

Exporter::~Exporter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void Exporter::submit(Trace trace) {
  const std::size_t spans = trace.spans.size();
  if (spans == 0) return;
  bool batch_full = false;
  {
    std::lock_guard lock(mutex_);
    if (queued_spans_ + spans > options_.max_queued_spans) {
      dropped_spans_.fetch_add(spans, std::memory_order_relaxed);
      return;
    }
    queue_.push_back(std::move(trace));
    queued_spans_ += spans;
    batch_full = queued_spans_ >= options_.max_batch_spans;
  }
  if (batch_full) wake_.notify_one();
}

ExporterCounters Exporter::counters() const {
  return ExporterCounters{exported_spans_.load(std::memory_order_relaxed), dropped_spans_.load(std::memory_order_relaxed),
                          failed_exports_.load(std::memory_order_relaxed)};
}

std::vector<Trace> Exporter::take_batch() {
  std::vector<Trace> batch;
  std::size_t spans = 0;
  while (!queue_.empty() && (batch.empty() || spans + queue_.front().spans.size() <= options_.max_batch_spans)) {
    spans += queue_.front().spans.size();
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  queued_spans_ -= spans;
  return batch;
}

void Exporter::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait_for(lock, options_.batch_delay,
                   [this] { return stopping_ || queued_spans_ >= options_.max_batch_spans; });
    if (queue_.empty()) {
      if (stopping_) return;
      continue;
    }
    const std::size_t before = queued_spans_;
    std::vector<Trace> batch = take_batch();
    const std::size_t spans = before - queued_spans_;
    lock.unlock();
    const bool sent = send(batch, spans);
    lock.lock();
    if (stopping_ && !sent) {
      // Shutting down with the collector away: one bounded attempt was enough.
      dropped_spans_.fetch_add(queued_spans_, std::memory_order_relaxed);
      queue_.clear();
      queued_spans_ = 0;
    }
  }
}

bool Exporter::send(const std::vector<Trace>& batch, std::size_t spans) {
  upstream::Request request;
  request.endpoint = &endpoint_;
  request.target = endpoint_.base_path + "/v1/traces";
  request.headers.emplace_back("Content-Type", "application/json");
  request.body = encode_otlp_json(options_.resource, batch);
  request.timeout = options_.timeout;
  request.connect_timeout = options_.timeout;
  request.max_response_bytes = 1 << 20;

  // A private event loop per batch: the exporter's I/O never shares a thread with calls.
  asio::io_context io;
  std::optional<unsigned> status;
  {
    upstream::Client client(io.get_executor(), tls_);
    asio::co_spawn(io, client.send(request), [&status](std::exception_ptr thrown, Result<upstream::Response, upstream::Failure> sent) {
      if (!thrown && sent) status = sent->status;
    });
    io.run();
  }
  io.restart();
  io.run();  // whatever closing the client's connections left to do
  if (status && *status >= 200 && *status < 300) {
    exported_spans_.fetch_add(spans, std::memory_order_relaxed);
    return true;
  }
  failed_exports_.fetch_add(1, std::memory_order_relaxed);
  dropped_spans_.fetch_add(spans, std::memory_order_relaxed);
  return false;
}

}  // namespace turnout::tracing
