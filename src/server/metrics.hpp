#pragma once
// Prometheus metrics for /metrics: counters and histograms named by Prometheus
// conventions. Updated once per request under one short lock (two event-loop threads
// do not contend measurably); rendered as text exposition format 0.0.4.
#include "pricing/pricing.hpp"
#include "resilience/cooldown.hpp"
#include "tracing/exporter.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace turnout::server {

struct RequestObservation {
  std::string_view endpoint = "chat";  // chat, embeddings, responses (ledger::k*Endpoint)
  std::string model;  // routed model ("" when rejected before routing)
  std::string route;
  unsigned status = 0;
  double duration_s = 0;
  double upstream_s = 0;
  double overhead_s = 0;
  std::uint64_t prompt_tokens = 0;
  std::uint64_t completion_tokens = 0;
  std::optional<pricing::Money> cost;
  unsigned retries = 0;
  unsigned fallbacks = 0;
};

// Bucket upper bounds in seconds, ascending; the +Inf bucket is implicit. The gateway's
// own overhead is sub-millisecond, while an LLM call takes seconds and a long stream
// minutes, so the two kinds of histogram need different ranges to be useful for quantiles.
inline constexpr std::array<double, 14> kOverheadBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                            0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};
inline constexpr std::array<double, 15> kLatencyBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                           2.5,   5,    10,    30,   60,  120, 300};

class Histogram {
 public:
  explicit Histogram(std::span<const double> bounds) : bounds_(bounds), counts_(bounds.size() + 1) {}
  void observe(double v);
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::span<const double> bounds_;     // must outlive the histogram: the tables above are static
  std::vector<std::uint64_t> counts_;  // per bucket, not cumulative; last: +Inf
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

class Metrics {
 public:
  // Model names can come from clients (routing.allow_unknown_models): past this many
  // distinct names, further ones are counted under model="other", so no client can grow
  // /metrics (and a Prometheus server's series) without bound.
  static constexpr std::size_t kMaxModelLabels = 256;

  void record_request(const RequestObservation& obs);
  void record_rejection(const std::string& reason, unsigned status);
  // One config reload (SIGHUP) and its outcome, at `unix_time`.
  void record_config_reload(bool success, double unix_time);
  std::atomic<long>& inflight() { return inflight_; }
  long inflight_value() const { return inflight_.load(); }
  std::string render() const;

 private:
  // The label `model` is counted under (itself, or "other" once the cap is reached).
  const std::string& model_label(const std::string& model) const;

  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, unsigned>, std::uint64_t> requests_;
  std::map<std::pair<std::string, unsigned>, std::uint64_t> rejections_;
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> tokens_;  // prompt, completion
  std::map<std::string, pricing::Money> cost_;
  // By endpoint (a fixed handful: chat, embeddings, responses): calls and exact cost.
  std::map<std::pair<std::string, unsigned>, std::uint64_t> endpoint_requests_;
  std::map<std::string, pricing::Money> endpoint_cost_;
  Histogram duration_{kLatencyBuckets}, upstream_{kLatencyBuckets}, overhead_{kOverheadBuckets};
  std::uint64_t retries_ = 0, fallbacks_ = 0;
  struct ReloadTally {
    std::uint64_t count = 0;
    double last_unix = 0;  // 0: never
  };
  ReloadTally reload_successes_, reload_failures_;
  bool last_reload_successful_ = true;  // no reload tried yet: the start-up config is in effect
  std::atomic<long> inflight_{0};
};

// The ledger's journal hand-off (docs/REFERENCE.md §2.8): loops whose journal is off, and
// journal writes that failed.
void append_ledger_journal_metrics(std::string& out, std::size_t journals_off, std::uint64_t write_failures);
// Appends turnout_model_failures_total{model} (retryable upstream failures) and
// turnout_model_cooldown{model} (1 while the model is skipped) for every tracked model.
void append_cooldown_metrics(std::string& out, const std::vector<resilience::ModelCooldownState>& models);

// Appends turnout_access_log_dropped_lines_total: access-log lines lost (stdout stalled,
// closed or failing), which the log itself cannot tell.
void append_access_log_metrics(std::string& out, std::uint64_t dropped_lines);

// Appends the trace exporter's counters (only while tracing is on).
void append_trace_export_metrics(std::string& out, const tracing::ExporterCounters& counters);

}  // namespace turnout::server
