// render_stats_json: the /stats body of docs/REFERENCE.md §5, written by hand rather than
// through a JSON DOM because costs must appear as exact decimal numbers, which a DOM
// would round through a double.
#include "ledger/ledger.hpp"
#include "common/json_text.hpp"

#include <fmt/format.h>

#include <cmath>
#include <iterator>
#include <string_view>

namespace turnout::ledger {
namespace {

class JsonWriter {
 public:
  void begin_object() { open('{'); }
  void end_object() { close('}'); }
  void begin_array() { open('['); }
  void end_array() { close(']'); }

  void key(std::string_view name) {
    separate();
    quoted(name);
    out_ += ':';
    after_key_ = true;
  }

  void string(std::string_view text) {
    separate();
    quoted(text);
  }
  void number(std::uint64_t value) { value_text(fmt::format("{}", value)); }
  void number(int value) { value_text(fmt::format("{}", value)); }
  void money(pricing::Money amount) { value_text(pricing::format_usd(amount)); }
  void money(const std::optional<pricing::Money>& amount) {
    if (amount) {
      money(*amount);
    } else {
      null();
    }
  }
  // A measurement in JSON's shortest form after rounding to `decimals` places.
  void real(double value, int decimals) {
    if (!std::isfinite(value)) {
      null();  // JSON has no NaN or infinity
      return;
    }
    const double scale = std::pow(10.0, decimals);
    value_text(fmt::format("{}", std::round(value * scale) / scale));
  }
  void real(double value) {
    if (!std::isfinite(value)) {
      null();
      return;
    }
    value_text(fmt::format("{}", value));
  }
  void null() { value_text("null"); }

  std::string take() { return std::move(out_); }

 private:
  void open(char bracket) {
    separate();
    out_ += bracket;
    first_in_container_ = true;
  }
  void close(char bracket) {
    out_ += bracket;
    first_in_container_ = false;
  }
  void value_text(std::string_view text) {
    separate();
    out_ += text;
  }
  // Emits the comma before any element that is not the first of its container.
  void separate() {
    if (after_key_) {
      after_key_ = false;
    } else if (!first_in_container_ && !out_.empty()) {
      out_ += ',';
    }
    first_in_container_ = false;
  }
  // Invalid UTF-8 from a client (request id, model name) becomes U+FFFD, so the output
  // is always valid JSON.
  void quoted(std::string_view text) { append_json_string(out_, text); }

  std::string out_;
  bool first_in_container_ = true;
  bool after_key_ = false;
};

constexpr int kLatencyDecimals = 3;

void write_count_map(JsonWriter& json, const std::map<std::string, std::uint64_t>& counts) {
  json.begin_object();
  for (const auto& [name, count] : counts) {
    json.key(name);
    json.number(count);
  }
  json.end_object();
}

void write_recent_call(JsonWriter& json, const RecentCall& call) {
  json.begin_object();
  json.key("id");
  json.string(call.id);
  json.key("timestamp");
  json.real(call.timestamp);
  json.key("model");
  json.string(call.model);
  json.key("route");
  json.string(call.route);
  json.key("cost_usd");
  json.money(call.cost);
  json.key("latency_ms");
  json.real(call.latency_ms, kLatencyDecimals);
  json.key("tokens");
  json.number(call.prompt_tokens + call.completion_tokens);
  json.key("prompt_tokens");
  json.number(call.prompt_tokens);
  json.key("completion_tokens");
  json.number(call.completion_tokens);
  json.key("status");
  json.number(call.status);
  json.key("counted_prompt_tokens");
  if (call.counted_prompt_tokens) {
    json.number(*call.counted_prompt_tokens);
  } else {
    json.null();
  }
  json.key("attempts");
  json.number(call.attempts);
  json.key("error_type");
  json.string(call.error_type);
  json.end_object();
}

void write_latency(JsonWriter& json, const LatencySummary& latency) {
  json.begin_object();
  for (auto [name, value] : {std::pair{"avg", latency.avg}, std::pair{"p50", latency.p50},
                             std::pair{"p95", latency.p95}, std::pair{"p99", latency.p99}}) {
    json.key(name);
    json.real(value, kLatencyDecimals);
  }
  json.end_object();
}

void write_model(JsonWriter& json, const ModelStats& model) {
  json.begin_object();
  json.key("calls");
  json.number(model.calls);
  json.key("errors");
  json.number(model.errors);
  json.key("prompt_tokens");
  json.number(model.prompt_tokens);
  json.key("completion_tokens");
  json.number(model.completion_tokens);
  json.key("cost_usd");
  json.money(model.cost);
  json.key("latency_ms");
  write_latency(json, model.latency_ms);
  json.end_object();
}

// A gateway without keys records its calls under the key id "", shown as "anonymous".
void write_key(JsonWriter& json, const KeyStats& key) {
  json.begin_object();
  json.key("calls");
  json.number(key.calls);
  json.key("prompt_tokens");
  json.number(key.prompt_tokens);
  json.key("completion_tokens");
  json.number(key.completion_tokens);
  json.key("tokens");
  json.number(key.prompt_tokens + key.completion_tokens);
  json.key("cost_usd");
  json.money(key.cost);
  json.end_object();
}

void write_endpoint(JsonWriter& json, const EndpointStats& endpoint) {
  json.begin_object();
  json.key("calls");
  json.number(endpoint.calls);
  json.key("errors");
  json.number(endpoint.errors);
  json.key("prompt_tokens");
  json.number(endpoint.prompt_tokens);
  json.key("completion_tokens");
  json.number(endpoint.completion_tokens);
  json.key("tokens");
  json.number(endpoint.prompt_tokens + endpoint.completion_tokens);
  json.key("cost_usd");
  json.money(endpoint.cost);
  json.key("unpriced_calls");
  json.number(endpoint.unpriced_calls);
  json.key("avg_latency_ms");
  json.real(endpoint.avg_latency_ms, kLatencyDecimals);
  json.end_object();
}

// The figures of a window, as members of an open object: /stats's (with `recent`, in
// its documented order; the fields added later come last) and each /stats/series bucket's.
void write_window_figures(JsonWriter& json, const StatsReport& report, bool with_recent) {
  json.key("total_calls");
  json.number(report.total_calls);
  json.key("total_cost_usd");
  json.money(report.total_cost);
  json.key("avg_latency_ms");
  json.real(report.avg_latency_ms, kLatencyDecimals);
  json.key("model_distribution");
  write_count_map(json, report.model_distribution);
  if (with_recent) {
    json.key("recent_calls");
    json.begin_array();
    for (const RecentCall& call : report.recent_calls) {
      write_recent_call(json, call);
    }
    json.end_array();
  }
  json.key("errors");
  json.number(report.errors);
  json.key("models");
  json.begin_object();
  for (const auto& [name, model] : report.models) {
    json.key(name);
    write_model(json, model);
  }
  json.end_object();
  json.key("routes");
  write_count_map(json, report.routes);
  json.key("baseline_cost_usd");
  json.money(report.baseline_cost);
  json.key("savings_usd");
  json.money(report.savings);
  json.key("unpriced_calls");
  json.number(report.unpriced_calls);
  json.key("keys");
  json.begin_object();
  for (const auto& [id, key] : report.keys) {
    json.key(id.empty() ? "anonymous" : id);
    write_key(json, key);
  }
  json.end_object();
  json.key("latency_ms");
  write_latency(json, report.latency_ms);
  std::uint64_t prompt_tokens = 0, completion_tokens = 0;
  for (const auto& [name, model] : report.models) {
    prompt_tokens += model.prompt_tokens;
    completion_tokens += model.completion_tokens;
  }
  json.key("prompt_tokens");
  json.number(prompt_tokens);
  json.key("completion_tokens");
  json.number(completion_tokens);
  if (with_recent) {  // /stats; a /stats/series bucket has no endpoint breakdown
    json.key("endpoints");
    json.begin_object();
    for (const auto& [name, endpoint] : report.endpoints) {
      json.key(name);
      write_endpoint(json, endpoint);
    }
    json.end_object();
  }
}

}  // namespace

namespace {

// Present only when the roll-ups may miss calls already acknowledged (docs/REFERENCE.md §5).
void write_rollups_stale(JsonWriter& json, const std::string& why) {
  if (why.empty()) return;
  json.key("rollups_stale");
  json.string(why);
}

}  // namespace

std::string render_stats_json(const StatsReport& report) {
  JsonWriter json;
  json.begin_object();
  write_window_figures(json, report, true);
  write_rollups_stale(json, report.rollups_stale);
  json.end_object();
  return json.take();
}

std::string render_series_json(const SeriesReport& report) {
  JsonWriter json;
  json.begin_object();
  json.key("object");
  json.string("stats.series");
  for (auto [name, value] : {std::pair{"since", report.query.since}, std::pair{"until", report.query.until},
                             std::pair{"step", report.query.step}}) {
    json.key(name);
    json.number(static_cast<std::uint64_t>(value));
  }
  json.key("buckets");
  json.begin_array();
  for (std::size_t index = 0; index < report.buckets.size(); ++index) {
    json.begin_object();
    json.key("start");
    json.number(static_cast<std::uint64_t>(report.query.since) + index * static_cast<std::uint64_t>(report.query.step));
    write_window_figures(json, report.buckets[index], false);
    json.end_object();
  }
  json.end_array();
  write_rollups_stale(json, report.rollups_stale);
  json.end_object();
  return json.take();
}

}  // namespace turnout::ledger
