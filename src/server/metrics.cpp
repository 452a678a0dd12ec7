#include "server/metrics.hpp"

#include "common/utf8.hpp"

#include <fmt/format.h>

namespace turnout::server {
namespace {

// Label values are escaped per the exposition format: only backslash, quote and newline,
// which is why this is not the JSON string writer (JSON escapes more, and differently).
// Invalid UTF-8 is repaired first with the shared helper (the format is UTF-8 text).
std::string escape_label(const std::string& raw) {
  std::string scratch;
  const std::string_view v = as_valid_utf8(raw, scratch);
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

void Histogram::observe(double v) {
  std::size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  std::uint64_t cumulative = 0;
  const std::string sep = labels.empty() ? "" : ",";
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, bounds_[i], cumulative);
  }
  cumulative += counts_.back();
  out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, cumulative);
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, braces, sum_, name, braces, count_);
}

const std::string& Metrics::model_label(const std::string& model) const {
  static const std::string other = "other";
  // tokens_ holds one entry per model label in use.
  return tokens_.size() < kMaxModelLabels || tokens_.contains(model) ? model : other;
}

void Metrics::record_request(const RequestObservation& obs) {
  std::lock_guard lock(mutex_);
  const std::string& model = model_label(obs.model);
  ++requests_[{model, obs.route, obs.status}];
  auto& t = tokens_[model];
  t.first += obs.prompt_tokens;
  t.second += obs.completion_tokens;
  if (obs.cost) cost_[model] += *obs.cost;
  ++endpoint_requests_[{std::string(obs.endpoint), obs.status}];
  if (obs.cost) endpoint_cost_[std::string(obs.endpoint)] += *obs.cost;
  duration_.observe(obs.duration_s);
  if (obs.upstream_s > 0) upstream_.observe(obs.upstream_s);
  overhead_.observe(obs.overhead_s);
  retries_ += obs.retries;
  fallbacks_ += obs.fallbacks;
}

void Metrics::record_rejection(const std::string& reason, unsigned status) {
  std::lock_guard lock(mutex_);
  ++rejections_[{reason, status}];
}

void Metrics::record_config_reload(bool success, double unix_time) {
  std::lock_guard lock(mutex_);
  ReloadTally& tally = success ? reload_successes_ : reload_failures_;
  ++tally.count;
  tally.last_unix = unix_time;
  last_reload_successful_ = success;
}

std::string Metrics::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  out.reserve(4096);
  out += "# HELP turnout_requests_total Forwarded calls that reached the ledger, by routed model, route and status.\n";
  out += "# TYPE turnout_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    const auto& [model, route, status] = key;
    out += fmt::format("turnout_requests_total{{model=\"{}\",route=\"{}\",status=\"{}\"}} {}\n",
                       escape_label(model), escape_label(route), status, n);
  }
  out += "# HELP turnout_rejected_requests_total Requests rejected before routing (bad input, auth, size).\n";
  out += "# TYPE turnout_rejected_requests_total counter\n";
  for (const auto& [key, n] : rejections_)
    out += fmt::format("turnout_rejected_requests_total{{reason=\"{}\",status=\"{}\"}} {}\n", escape_label(key.first),
                       key.second, n);
  out += "# HELP turnout_request_duration_seconds Whole request latency, upstream included.\n";
  out += "# TYPE turnout_request_duration_seconds histogram\n";
  duration_.render(out, "turnout_request_duration_seconds", "");
  out += "# HELP turnout_upstream_duration_seconds Time spent waiting for the upstream, all attempts.\n";
  out += "# TYPE turnout_upstream_duration_seconds histogram\n";
  upstream_.render(out, "turnout_upstream_duration_seconds", "");
  out += "# HELP turnout_overhead_seconds Time spent in the gateway itself, upstream excluded.\n";
  out += "# TYPE turnout_overhead_seconds histogram\n";
  overhead_.render(out, "turnout_overhead_seconds", "");
  out += "# HELP turnout_tokens_total Tokens by model and kind (prompt, completion).\n";
  out += "# TYPE turnout_tokens_total counter\n";
  for (const auto& [model, t] : tokens_) {
    out += fmt::format("turnout_tokens_total{{model=\"{}\",kind=\"prompt\"}} {}\n", escape_label(model), t.first);
    out += fmt::format("turnout_tokens_total{{model=\"{}\",kind=\"completion\"}} {}\n", escape_label(model), t.second);
  }
  out += "# HELP turnout_cost_usd_total Exact cost of priced calls in USD, by model.\n";
  out += "# TYPE turnout_cost_usd_total counter\n";
  for (const auto& [model, c] : cost_)
    out += fmt::format("turnout_cost_usd_total{{model=\"{}\"}} {}\n", escape_label(model), pricing::format_usd(c));
  out += "# HELP turnout_endpoint_requests_total Forwarded calls that reached the ledger, by endpoint (chat, embeddings, responses) and status.\n";
  out += "# TYPE turnout_endpoint_requests_total counter\n";
  for (const auto& [key, n] : endpoint_requests_)
    out += fmt::format("turnout_endpoint_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n",
                       escape_label(key.first), key.second, n);
  out += "# HELP turnout_endpoint_cost_usd_total Exact cost of priced calls in USD, by endpoint.\n";
  out += "# TYPE turnout_endpoint_cost_usd_total counter\n";
  for (const auto& [endpoint, c] : endpoint_cost_)
    out += fmt::format("turnout_endpoint_cost_usd_total{{endpoint=\"{}\"}} {}\n", escape_label(endpoint),
                       pricing::format_usd(c));
  out += "# HELP turnout_upstream_retries_total Upstream attempts repeated on the same model.\n";
  out += "# TYPE turnout_upstream_retries_total counter\n";
  out += fmt::format("turnout_upstream_retries_total {}\n", retries_);
  out += "# HELP turnout_fallbacks_total Calls moved to a fallback model.\n";
  out += "# TYPE turnout_fallbacks_total counter\n";
  out += fmt::format("turnout_fallbacks_total {}\n", fallbacks_);
  out += "# HELP turnout_inflight_requests Requests being processed now.\n";
  out += "# TYPE turnout_inflight_requests gauge\n";
  out += fmt::format("turnout_inflight_requests {}\n", inflight_.load());
  out += "# HELP turnout_config_reloads_total Config reloads (SIGHUP) by result.\n";
  out += "# TYPE turnout_config_reloads_total counter\n";
  out += fmt::format("turnout_config_reloads_total{{result=\"success\"}} {}\n", reload_successes_.count);
  out += fmt::format("turnout_config_reloads_total{{result=\"failure\"}} {}\n", reload_failures_.count);
  out += "# HELP turnout_config_last_reload_timestamp_seconds Unix time of the last reload by result (0: none yet).\n";
  out += "# TYPE turnout_config_last_reload_timestamp_seconds gauge\n";
  out += fmt::format("turnout_config_last_reload_timestamp_seconds{{result=\"success\"}} {:.3f}\n",
                     reload_successes_.last_unix);
  out += fmt::format("turnout_config_last_reload_timestamp_seconds{{result=\"failure\"}} {:.3f}\n",
                     reload_failures_.last_unix);
  out += "# HELP turnout_config_last_reload_successful 0 when the last reload was refused (the previous config serves).\n";
  out += "# TYPE turnout_config_last_reload_successful gauge\n";
  out += fmt::format("turnout_config_last_reload_successful {}\n", last_reload_successful_ ? 1 : 0);
  return out;
}

void append_cooldown_metrics(std::string& out, const std::vector<resilience::ModelCooldownState>& models) {
  out += "# HELP turnout_model_failures_total Retryable upstream failures (429, 5xx, timeouts, connection errors) by model.\n";
  out += "# TYPE turnout_model_failures_total counter\n";
  for (const auto& m : models)
    out += fmt::format("turnout_model_failures_total{{model=\"{}\"}} {}\n", escape_label(m.model), m.failures_total);
  out += "# HELP turnout_model_cooldown 1 while the model is skipped after repeated failures (routing.cooldown).\n";
  out += "# TYPE turnout_model_cooldown gauge\n";
  for (const auto& m : models)
    out += fmt::format("turnout_model_cooldown{{model=\"{}\"}} {}\n", escape_label(m.model), m.cooling_down ? 1 : 0);
}

void append_access_log_metrics(std::string& out, std::uint64_t dropped_lines) {
  out += "# HELP turnout_access_log_dropped_lines_total Access-log lines lost: stdout refused them, or stayed full past the sink's bound.\n";
  out += "# TYPE turnout_access_log_dropped_lines_total counter\n";
  out += fmt::format("turnout_access_log_dropped_lines_total {}\n", dropped_lines);
}

void append_trace_export_metrics(std::string& out, const tracing::ExporterCounters& counters) {
  out += "# HELP turnout_trace_spans_exported_total Spans the OTLP collector accepted.\n";
  out += "# TYPE turnout_trace_spans_exported_total counter\n";
  out += fmt::format("turnout_trace_spans_exported_total {}\n", counters.exported_spans);
  out += "# HELP turnout_trace_spans_dropped_total Spans dropped: the export queue was full, or their batch failed.\n";
  out += "# TYPE turnout_trace_spans_dropped_total counter\n";
  out += fmt::format("turnout_trace_spans_dropped_total {}\n", counters.dropped_spans);
  out += "# HELP turnout_trace_export_failures_total Span batches the collector did not accept (down, slow, non-2xx).\n";
  out += "# TYPE turnout_trace_export_failures_total counter\n";
  out += fmt::format("turnout_trace_export_failures_total {}\n", counters.failed_exports);
}

void append_ledger_journal_metrics(std::string& out, std::size_t journals_off, std::uint64_t write_failures) {
  out += "# HELP turnout_ledger_journals_off Event loops whose calls wait for the ledger commit because their "
         "hand-off journal is off (none could be taken, a failed write, a record given up).\n";
  out += "# TYPE turnout_ledger_journals_off gauge\n";
  out += fmt::format("turnout_ledger_journals_off {}\n", journals_off);
  out += "# HELP turnout_ledger_journal_write_failures_total Hand-off journal writes that failed; their calls "
         "were answered after the commit.\n";
  out += "# TYPE turnout_ledger_journal_write_failures_total counter\n";
  out += fmt::format("turnout_ledger_journal_write_failures_total {}\n", write_failures);
}

}  // namespace turnout::server
