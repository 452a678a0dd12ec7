// Ledger throughput and /stats latency on a real SQLite file: records/s through the
// group-committing writer, and stats() over a prefilled ledger, whole and windowed.
#include "ledger/ledger.hpp"

#include <benchmark/benchmark.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>
#include <stdexcept>

namespace {

using namespace turnout;
using namespace turnout::ledger;
namespace fs = std::filesystem;

class TempFile {
 public:
  TempFile() {
    std::string pattern = (fs::temp_directory_path() / "turnout-ledger-bench-XXXXXX").string();
    dir_ = ::mkdtemp(pattern.data());
  }
  ~TempFile() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  std::string url() const { return "sqlite:" + (dir_ / "ledger.db").string(); }

 private:
  fs::path dir_;
};

std::unique_ptr<Ledger> open_or_throw(const std::string& url) {
  auto ledger = open_ledger(url);
  if (!ledger) throw std::runtime_error(ledger.error().message);
  return std::move(*ledger);
}

CallRecord synthetic_record(std::mt19937& rng, std::uint64_t index) {
  static const char* const kModels[] = {"gpt-3.5-turbo", "gpt-4o-mini", "gpt-4o", "gpt-4.1"};
  static const char* const kRoutes[] = {"simple", "medium", "complex", "explicit"};
  CallRecord r;
  r.id = "req-" + std::to_string(index);
  r.timestamp = 1'700'000'000 + static_cast<double>(index) * 0.01;
  r.instance_id = "bench";
  r.requested_model = "auto";
  r.model = kModels[rng() % 4];
  r.route = kRoutes[rng() % 4];
  const std::uint64_t counted = rng() % 8000;
  r.counted_prompt_tokens = counted;
  r.usage = {counted, rng() % 1000, 0};
  r.usage_reported = true;
  r.cost = pricing::Money{static_cast<std::int64_t>(rng() % 100'000'000)};
  r.baseline_cost = pricing::Money{static_cast<std::int64_t>(rng() % 400'000'000)};
  r.latency_ms = 50 + (rng() % 500000) / 100.0;
  r.status = rng() % 20 == 0 ? 502 : 200;
  r.attempts = 1;
  return r;
}

// Appends `count` records and waits until the writer has reported every one.
void append_and_wait_all(Ledger& ledger, std::mt19937& rng, std::uint64_t first, std::uint64_t count) {
  std::mutex mutex;
  std::condition_variable all_done;
  std::uint64_t done = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    ledger.append(synthetic_record(rng, first + i), [&](Result<void>) {
      std::lock_guard lock(mutex);
      if (++done == count) all_done.notify_one();
    });
  }
  std::unique_lock lock(mutex);
  all_done.wait(lock, [&] { return done == count; });
}

// Records per second from append() to the durable callback, batches formed by the
// writer as the queue fills.
void BM_AppendUntilDurable(benchmark::State& state) {
  TempFile file;
  auto ledger = open_or_throw(file.url());
  std::mt19937 rng(1);
  const auto per_iteration = static_cast<std::uint64_t>(state.range(0));
  std::uint64_t written = 0;
  for (auto _ : state) {
    append_and_wait_all(*ledger, rng, written, per_iteration);
    written += per_iteration;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(written));
}
BENCHMARK(BM_AppendUntilDurable)->Arg(1)->Arg(100)->Arg(10000)->UseRealTime();

// stats() over a ledger of range(0) calls: whole ledger, and the last 10% of it.
void BM_StatsOverLedger(benchmark::State& state) {
  TempFile file;
  auto ledger = open_or_throw(file.url());
  std::mt19937 rng(2);
  const auto calls = static_cast<std::uint64_t>(state.range(0));
  append_and_wait_all(*ledger, rng, 0, calls);
  StatsQuery query;
  if (state.range(1) != 0) query.since = 1'700'000'000 + static_cast<double>(calls) * 0.01 * 0.9;
  for (auto _ : state) {
    auto report = ledger->stats(query);
    if (!report) state.SkipWithError(report.error().message.c_str());
    benchmark::DoNotOptimize(report);
  }
}
BENCHMARK(BM_StatsOverLedger)
    ->Args({10'000, 0})
    ->Args({100'000, 0})
    ->Args({100'000, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_RenderStatsJson(benchmark::State& state) {
  auto ledger = open_or_throw("sqlite::memory:");
  std::mt19937 rng(3);
  append_and_wait_all(*ledger, rng, 0, 1000);
  const StatsReport report = ledger->stats({}).value();
  for (auto _ : state) {
    benchmark::DoNotOptimize(render_stats_json(report));
  }
}
BENCHMARK(BM_RenderStatsJson);

}  // namespace
BENCHMARK_MAIN();
