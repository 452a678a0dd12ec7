#pragma once
// Shared by the ledger tests of every backend: records (fixed and random), a brute-force
// StatsReport computed straight from the records, and the comparisons, so SQLite and
// PostgreSQL are held to one reference.
#include "ledger/latency_histogram.hpp"
#include "ledger/backend.hpp"
#include "ledger/ledger.hpp"
#include "ledger/sqlite/db.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace turnout::ledger::test {

using pricing::Money;
namespace fs = std::filesystem;

// A fresh private directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "turnout-ledger-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline std::unique_ptr<Ledger> open_or_die(const std::string& url, const LedgerOptions& options = {}) {
  auto opened = open_ledger(url, options);
  if (!opened) {
    ADD_FAILURE() << "open_ledger(" << url << "): " << opened.error().message;
    return nullptr;
  }
  return std::move(*opened);
}

// Appends and blocks until the writer reports the outcome.
inline Result<void> append_and_wait(Ledger& ledger, CallRecord record) {
  std::promise<Result<void>> outcome;
  auto future = outcome.get_future();
  ledger.append(std::move(record), [&outcome](Result<void> r) { outcome.set_value(std::move(r)); });
  return future.get();
}

// As /stats does: the writer folds every acknowledged call into the roll-ups first.
inline void fold_or_fail(Ledger& ledger) {
  const FoldOutcome folded = wait_for_fold(ledger, std::chrono::seconds(10));
  EXPECT_TRUE(folded.complete) << folded.problem;
}

inline StatsReport stats_or_die(Ledger& ledger, const StatsQuery& query = {}) {
  fold_or_fail(ledger);
  auto report = ledger.stats(query);
  if (!report) {
    ADD_FAILURE() << "stats: " << report.error().message;
    return {};
  }
  return std::move(*report);
}

inline CallRecord sample_record(std::string id, double timestamp, std::string model) {
  CallRecord r;
  r.id = std::move(id);
  r.timestamp = timestamp;
  r.instance_id = "instance-a";
  r.model = std::move(model);
  r.requested_model = "auto";
  r.route = "simple";
  r.counted_prompt_tokens = 10;
  r.usage = {10, 5, 0};
  r.usage_reported = true;
  r.cost = Money{1000};
  r.baseline_cost = Money{5000};
  r.latency_ms = 12.5;
  r.attempts = 1;
  return r;
}

inline void expect_same_record(const CallRecord& expected, const CallRecord& actual) {
  EXPECT_EQ(expected.id, actual.id);
  EXPECT_EQ(expected.timestamp, actual.timestamp);
  EXPECT_EQ(expected.instance_id, actual.instance_id);
  EXPECT_EQ(expected.client_key_id, actual.client_key_id);
  EXPECT_EQ(expected.requested_model, actual.requested_model);
  EXPECT_EQ(expected.model, actual.model);
  EXPECT_EQ(expected.route, actual.route);
  EXPECT_EQ(expected.counted_prompt_tokens, actual.counted_prompt_tokens);
  EXPECT_EQ(expected.usage.prompt_tokens, actual.usage.prompt_tokens);
  EXPECT_EQ(expected.usage.completion_tokens, actual.usage.completion_tokens);
  EXPECT_EQ(expected.usage.cached_tokens, actual.usage.cached_tokens);
  EXPECT_EQ(expected.usage_reported, actual.usage_reported);
  EXPECT_EQ(expected.cost, actual.cost);
  EXPECT_EQ(expected.baseline_cost, actual.baseline_cost);
  EXPECT_EQ(expected.latency_ms, actual.latency_ms);
  EXPECT_EQ(expected.ttft_ms, actual.ttft_ms);
  EXPECT_EQ(expected.status, actual.status);
  EXPECT_EQ(expected.error_type, actual.error_type);
  EXPECT_EQ(expected.attempts, actual.attempts);
  EXPECT_EQ(expected.stream, actual.stream);
  EXPECT_EQ(expected.endpoint, actual.endpoint);
  EXPECT_EQ(expected.count_estimated, actual.count_estimated);
  EXPECT_EQ(expected.count_partial, actual.count_partial);
}


inline bool eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

inline bool reference_is_error(const CallRecord& r) { return !r.error_type.empty() || r.status >= 400; }

// Nearest rank, written from the definition: the smallest value such that at least p% of
// the values are less than or equal to it.
inline double reference_percentile(std::vector<double> sorted, double percent) {
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (static_cast<double>(i + 1) * 100.0 >= percent * static_cast<double>(sorted.size())) return sorted[i];
  }
  return 0;
}

inline StatsReport brute_force_stats(const std::vector<CallRecord>& records, const StatsQuery& query) {
  StatsReport report;
  std::vector<std::size_t> in_window;
  std::map<std::string, std::vector<double>> latencies;
  std::vector<double> all_latencies;
  double latency_sum = 0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const CallRecord& r = records[i];
    if ((query.since && r.timestamp < *query.since) || (query.until && r.timestamp >= *query.until)) continue;
    in_window.push_back(i);
    ++report.total_calls;
    latency_sum += r.latency_ms;
    ++report.model_distribution[r.model];
    ++report.routes[r.route];
    ModelStats& model = report.models[r.model];
    ++model.calls;
    EndpointStats& endpoint = report.endpoints[r.endpoint];
    ++endpoint.calls;
    endpoint.prompt_tokens += r.usage.prompt_tokens;
    endpoint.completion_tokens += r.usage.completion_tokens;
    endpoint.avg_latency_ms += r.latency_ms;  // a sum until the end
    if (reference_is_error(r)) ++endpoint.errors;
    if (r.cost) {
      endpoint.priced_cost += *r.cost;
      endpoint.cost = endpoint.priced_cost;
    } else {
      ++endpoint.unpriced_calls;
    }
    KeyStats& key = report.keys[r.client_key_id];
    ++key.calls;
    key.prompt_tokens += r.usage.prompt_tokens;
    key.completion_tokens += r.usage.completion_tokens;
    if (r.cost) {
      key.priced_cost += *r.cost;
      key.cost = key.priced_cost;
    } else {
      ++key.unpriced_calls;
    }
    model.prompt_tokens += r.usage.prompt_tokens;
    model.completion_tokens += r.usage.completion_tokens;
    model.latency_ms.avg += r.latency_ms;  // a sum until the end
    latencies[r.model].push_back(r.latency_ms);
    all_latencies.push_back(r.latency_ms);
    if (reference_is_error(r)) {
      ++report.errors;
      ++model.errors;
    }
    if (r.cost) {
      report.total_cost += *r.cost;
      model.priced_cost += *r.cost;
      model.cost = model.priced_cost;
    } else {
      ++report.unpriced_calls;
      ++model.unpriced_calls;
    }
    if (r.baseline_cost) report.baseline_cost += *r.baseline_cost;
    if (r.baseline_cost && r.cost) report.savings += Money{r.baseline_cost->pico - r.cost->pico};
  }
  if (report.total_calls > 0) report.avg_latency_ms = latency_sum / static_cast<double>(report.total_calls);
  report.latency_ms.avg = report.avg_latency_ms;
  report.latency_ms.p50 = reference_percentile(all_latencies, 50);
  report.latency_ms.p95 = reference_percentile(all_latencies, 95);
  report.latency_ms.p99 = reference_percentile(all_latencies, 99);
  for (auto& [name, endpoint] : report.endpoints) endpoint.avg_latency_ms /= static_cast<double>(endpoint.calls);
  for (auto& [name, model] : report.models) {
    model.latency_ms.avg /= static_cast<double>(model.calls);
    model.latency_ms.p50 = reference_percentile(latencies[name], 50);
    model.latency_ms.p95 = reference_percentile(latencies[name], 95);
    model.latency_ms.p99 = reference_percentile(latencies[name], 99);
  }
  // Newest = latest timestamp, then latest written; keep the newest N, oldest first.
  std::stable_sort(in_window.begin(), in_window.end(),
                   [&](std::size_t a, std::size_t b) { return records[a].timestamp < records[b].timestamp; });
  const std::size_t keep = std::min(query.recent, in_window.size());
  for (std::size_t k = in_window.size() - keep; k < in_window.size(); ++k) {
    const CallRecord& r = records[in_window[k]];
    report.recent_calls.push_back(RecentCall{r.id, r.timestamp, r.model, r.route, r.cost, r.latency_ms,
                                             r.usage.prompt_tokens, r.usage.completion_tokens, r.status,
                                             r.counted_prompt_tokens, r.attempts, r.error_type});
  }
  return report;
}

inline void expect_near_relative(double expected, double actual, const std::string& what) {
  EXPECT_NEAR(expected, actual, 1e-9 * std::max(1.0, std::abs(expected))) << what;
}

// Percentiles come from latency histograms: the reported value must be in the same
// bucket as the exact nearest-rank latency (so within 4.4% of it).
inline void expect_same_percentile(double exact, double reported, const std::string& what) {
  EXPECT_EQ(latency_bucket(exact), latency_bucket(reported)) << what << ": exact " << exact << ", reported " << reported;
  EXPECT_NEAR(exact, reported, 0.045 * exact) << what;
}

// `by_endpoint`: /stats has the endpoint breakdown; a /stats/series bucket does not.
inline void expect_same_stats(const StatsReport& expected, const StatsReport& actual, bool by_endpoint = true) {
  EXPECT_EQ(expected.total_calls, actual.total_calls);
  EXPECT_EQ(expected.total_cost, actual.total_cost);
  expect_near_relative(expected.avg_latency_ms, actual.avg_latency_ms, "avg_latency_ms");
  EXPECT_EQ(expected.model_distribution, actual.model_distribution);
  EXPECT_EQ(expected.errors, actual.errors);
  EXPECT_EQ(expected.routes, actual.routes);
  EXPECT_EQ(expected.baseline_cost, actual.baseline_cost);
  EXPECT_EQ(expected.savings, actual.savings);
  EXPECT_EQ(expected.unpriced_calls, actual.unpriced_calls);
  if (expected.total_calls > 0) {
    expect_same_percentile(expected.latency_ms.p50, actual.latency_ms.p50, "overall p50");
    expect_same_percentile(expected.latency_ms.p95, actual.latency_ms.p95, "overall p95");
    expect_same_percentile(expected.latency_ms.p99, actual.latency_ms.p99, "overall p99");
  }
  ASSERT_EQ(expected.models.size(), actual.models.size());
  for (const auto& [name, want] : expected.models) {
    ASSERT_TRUE(actual.models.contains(name)) << name;
    const ModelStats& got = actual.models.at(name);
    EXPECT_EQ(want.calls, got.calls) << name;
    EXPECT_EQ(want.errors, got.errors) << name;
    EXPECT_EQ(want.prompt_tokens, got.prompt_tokens) << name;
    EXPECT_EQ(want.completion_tokens, got.completion_tokens) << name;
    EXPECT_EQ(want.cost, got.cost) << name;
    EXPECT_EQ(want.priced_cost, got.priced_cost) << name;
    EXPECT_EQ(want.unpriced_calls, got.unpriced_calls) << name;
    expect_near_relative(want.latency_ms.avg, got.latency_ms.avg, name + " avg");
    expect_same_percentile(want.latency_ms.p50, got.latency_ms.p50, name + " p50");
    expect_same_percentile(want.latency_ms.p95, got.latency_ms.p95, name + " p95");
    expect_same_percentile(want.latency_ms.p99, got.latency_ms.p99, name + " p99");
  }
  ASSERT_EQ(expected.keys.size(), actual.keys.size());
  for (const auto& [id, want] : expected.keys) {
    ASSERT_TRUE(actual.keys.contains(id)) << id;
    const KeyStats& got = actual.keys.at(id);
    EXPECT_EQ(want.calls, got.calls) << id;
    EXPECT_EQ(want.prompt_tokens, got.prompt_tokens) << id;
    EXPECT_EQ(want.completion_tokens, got.completion_tokens) << id;
    EXPECT_EQ(want.cost, got.cost) << id;
    EXPECT_EQ(want.unpriced_calls, got.unpriced_calls) << id;
  }
  if (by_endpoint) {
    ASSERT_EQ(expected.endpoints.size(), actual.endpoints.size());
    for (const auto& [name, want] : expected.endpoints) {
      ASSERT_TRUE(actual.endpoints.contains(name)) << name;
      const EndpointStats& got = actual.endpoints.at(name);
      EXPECT_EQ(want.calls, got.calls) << name;
      EXPECT_EQ(want.errors, got.errors) << name;
      EXPECT_EQ(want.prompt_tokens, got.prompt_tokens) << name;
      EXPECT_EQ(want.completion_tokens, got.completion_tokens) << name;
      EXPECT_EQ(want.cost, got.cost) << name;
      EXPECT_EQ(want.unpriced_calls, got.unpriced_calls) << name;
      expect_near_relative(want.avg_latency_ms, got.avg_latency_ms, name + " avg latency");
    }
  } else {
    EXPECT_TRUE(actual.endpoints.empty());
  }
  ASSERT_EQ(expected.recent_calls.size(), actual.recent_calls.size());
  for (std::size_t i = 0; i < expected.recent_calls.size(); ++i) {
    const RecentCall& want = expected.recent_calls[i];
    const RecentCall& got = actual.recent_calls[i];
    EXPECT_EQ(want.id, got.id) << "recent " << i;
    EXPECT_EQ(want.timestamp, got.timestamp) << "recent " << i;
    EXPECT_EQ(want.model, got.model) << "recent " << i;
    EXPECT_EQ(want.route, got.route) << "recent " << i;
    EXPECT_EQ(want.cost, got.cost) << "recent " << i;
    EXPECT_EQ(want.latency_ms, got.latency_ms) << "recent " << i;
    EXPECT_EQ(want.prompt_tokens, got.prompt_tokens) << "recent " << i;
    EXPECT_EQ(want.completion_tokens, got.completion_tokens) << "recent " << i;
    EXPECT_EQ(want.status, got.status) << "recent " << i;
    EXPECT_EQ(want.counted_prompt_tokens, got.counted_prompt_tokens) << "recent " << i;
    EXPECT_EQ(want.attempts, got.attempts) << "recent " << i;
    EXPECT_EQ(want.error_type, got.error_type) << "recent " << i;
  }
}

// Every bucket of the series equals the brute-force figures over the raw records of
// [start, start + step), and there is one bucket per step of [since, until).
inline void expect_series_matches_brute_force(const std::vector<CallRecord>& records, Ledger& ledger,
                                              const SeriesQuery& query) {
  SCOPED_TRACE(::testing::Message() << "series since=" << query.since << " until=" << query.until
                                    << " step=" << query.step);
  fold_or_fail(ledger);
  auto series = ledger.series(query);
  ASSERT_TRUE(series) << series.error().message;
  EXPECT_EQ(series->query.since, query.since);
  EXPECT_EQ(series->query.step, query.step);
  ASSERT_EQ(series->buckets.size(), static_cast<std::size_t>((query.until - query.since) / query.step));
  std::uint64_t calls = 0;
  for (std::size_t i = 0; i < series->buckets.size(); ++i) {
    const double start = static_cast<double>(query.since + static_cast<std::int64_t>(i) * query.step);
    SCOPED_TRACE(::testing::Message() << "bucket " << i << " at " << std::fixed << start);
    const StatsReport expected = brute_force_stats(records, StatsQuery{start, start + static_cast<double>(query.step), 0});
    expect_same_stats(expected, series->buckets[i], /*by_endpoint=*/false);
    calls += series->buckets[i].total_calls;
  }
  const auto whole = brute_force_stats(records, StatsQuery{static_cast<double>(query.since),
                                                           static_cast<double>(query.until), 0});
  EXPECT_EQ(calls, whole.total_calls);
}

// Timestamps and latencies on coarse grids, so windows fall exactly on records and
// percentiles meet ties.
// `spread_quarters`: timestamps fall on a quarter-second grid over this many quarters.
inline std::vector<CallRecord> random_records(std::size_t count, std::uint32_t seed, std::size_t spread_quarters = 400) {
  std::mt19937 rng(seed);
  const auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  const std::vector<std::string> models{"gpt-3.5-turbo", "gpt-4o-mini", "gpt-4o", "mystery-model"};
  const std::vector<std::string> routes{"simple", "medium", "complex", "explicit", "fallback:gpt-4o"};
  const std::vector<int> statuses{200, 200, 200, 200, 400, 429, 499, 500, 502};
  const std::vector<std::string> keys{"", "key_0a1b2c3d4e5f", "key_ffeeddccbbaa"};
  const std::vector<std::string> endpoints{"chat", "chat", "embeddings", "responses"};
  std::vector<CallRecord> records;
  for (std::size_t i = 0; i < count; ++i) {
    CallRecord r = sample_record("rand-" + std::to_string(i), 1'700'000'000 + static_cast<double>(pick(spread_quarters)) * 0.25,
                                 models[pick(models.size())]);
    r.route = routes[pick(routes.size())];
    r.client_key_id = keys[pick(keys.size())];
    r.status = statuses[pick(statuses.size())];
    r.error_type = pick(10) == 0 ? "upstream_error" : "";
    r.usage = {pick(5000), pick(2000), pick(100)};
    r.latency_ms = static_cast<double>(pick(3000)) * 0.5 + 0.125;
    r.cost = r.model == "mystery-model" || pick(20) == 0 ? std::nullopt
                                                         : std::optional(Money{static_cast<std::int64_t>(rng())});
    r.baseline_cost = pick(8) == 0 ? std::nullopt : std::optional(Money{static_cast<std::int64_t>(rng()) * 3});
    r.endpoint = endpoints[pick(endpoints.size())];
    records.push_back(std::move(r));
  }
  return records;
}

inline void append_all(Ledger& ledger, const std::vector<CallRecord>& records) {
  std::atomic<int> failures{0};
  for (const CallRecord& r : records) {
    ledger.append(r, [&](Result<void> outcome) {
      if (!outcome) failures.fetch_add(1);
    });
  }
  ASSERT_TRUE(append_and_wait(ledger, CallRecord{})) << "barrier record";  // written after all of the above
  EXPECT_EQ(failures.load(), 0);
  fold_or_fail(ledger);  // so direct reads of the roll-ups (stats, series, the file) count them
}

// `records` keyed prefix0, prefix1, ... for Backend::write_batch.
inline std::vector<KeyedRecord> keyed(const std::vector<CallRecord>& records, const std::string& prefix) {
  std::vector<KeyedRecord> out;
  for (std::size_t i = 0; i < records.size(); ++i) out.push_back({prefix + std::to_string(i), records[i]});
  return out;
}

// One integer read from a SQLite ledger file as it is, on a connection of its own.
inline std::int64_t query_int(const fs::path& file, const std::string& sql) {
  auto db = sqlite::Database::open(file.string());
  EXPECT_TRUE(db) << db.error().message;
  if (!db) return -1;
  auto value = db->query_int(sql);
  EXPECT_TRUE(value) << value.error().message;
  return value ? *value : -1;
}
// A Backend for writer tests: stores nothing, prunes nothing, reads empty figures and keeps
// the installation secret it is offered. A test derives from it and overrides write_batch
// (and whatever else it watches).
class StubBackend : public Backend {
 public:
  Result<std::uint64_t> prune_before(double, std::uint64_t, bool) override { return std::uint64_t{0}; }
  Result<void> prune_second_rollups(double) override { return {}; }
  Result<StatsReport> stats(const StatsQuery&) override { return StatsReport{}; }
  Result<SeriesReport> series(const SeriesQuery& query) override { return SeriesReport{query, {}}; }
  Result<std::string> installation_secret(const std::string& candidate) override {
    return Result<std::string>(boost::system::in_place_value, candidate);
  }
};

}  // namespace turnout::ledger::test
