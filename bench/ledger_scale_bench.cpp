// The ledger at scale (issue: 10 million calls): fills a real ledger (SQLite file, or the
// PostgreSQL database at TURNOUT_BENCH_PG_URL) through the public Ledger API with group
// commit, reporting write throughput, then /stats latency (p50/p99) for several windows,
// each against the same query answered by scanning raw rows, measured in the same run.
//
//   ledger_scale_bench [--calls N] [--days D] [--backend sqlite|postgresql] [--keep PATH]
//                      [--fill direct|api|none] [--measure all|series]
//
// --fill direct (the default) writes the history straight through the ledger Backend in
// batches of kDirectBatch records, each one write_batch transaction: the same code the
// writer thread runs (records and roll-ups together), without the per-call queueing, so
// 10 million records take minutes rather than the better part of an hour. --fill api
// appends every record through the public Ledger API instead (group commit, as a busy
// gateway does) and reports that throughput. --fill none writes nothing: it opens the
// ledger at --keep PATH (or TURNOUT_BENCH_PG_URL) as it is, migrating it if it is older
// (timed: the upgrade of a ledger of that size), and measures it. --measure series skips
// the /stats windows and their raw-scan baselines (minutes at 10 million records).
//
// Then /stats/series (the dashboard's charts) for the dashboard's windows. --keep PATH
// writes the SQLite ledger to PATH and leaves it there (for bench/dashboard_bench.mjs).
//
// Timestamps spread evenly over D days ending now, so the windows meet day, hour and
// minute roll-ups and raw edge rows the way a live ledger does.
#include "common/clock.hpp"
#include "ledger/backend.hpp"
#include "ledger/ledger.hpp"
#include "ledger/postgres/backend.hpp"
#include "ledger/postgres/connection.hpp"
#include "ledger/sqlite/backend.hpp"
#include "ledger/sqlite/db.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace turnout;
using namespace turnout::ledger;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Options {
  std::uint64_t calls = 10'000'000;
  double days = 30;
  std::string backend = "sqlite";
  std::string keep;  // SQLite: the ledger file to write and keep
  std::string fill = "direct";
  std::string measure = "all";
};

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--calls") options.calls = std::stoull(argv[i + 1]);
    else if (flag == "--days") options.days = std::stod(argv[i + 1]);
    else if (flag == "--backend") options.backend = argv[i + 1];
    else if (flag == "--keep") options.keep = argv[i + 1];
    else if (flag == "--fill") options.fill = argv[i + 1];
    else if (flag == "--measure") options.measure = argv[i + 1];
    else throw std::invalid_argument("unknown flag " + flag);
  }
  return options;
}

CallRecord synthetic_record(std::mt19937_64& rng, std::uint64_t index, double timestamp) {
  static const char* const kModels[] = {"gpt-3.5-turbo", "gpt-4o-mini", "gpt-4o", "gpt-4.1", "o3-mini", "mystery"};
  static const char* const kRoutes[] = {"simple", "medium", "complex", "explicit", "fallback:gpt-4o"};
  static const char* const kInstances[] = {"gw-a", "gw-b", "gw-c"};
  CallRecord r;
  r.id = fmt::format("req-{}", index);
  r.timestamp = timestamp;
  r.instance_id = kInstances[rng() % 3];
  r.client_key_id = fmt::format("key_{:012x}", rng() % 20);
  r.requested_model = "auto";
  r.model = kModels[rng() % 6];
  r.route = kRoutes[rng() % 5];
  const std::uint64_t counted = rng() % 8000;
  r.counted_prompt_tokens = counted;
  r.usage = {counted, rng() % 1000, 0};
  r.usage_reported = true;
  if (r.model != "mystery") r.cost = pricing::Money{static_cast<std::int64_t>(rng() % 100'000'000)};
  r.baseline_cost = pricing::Money{static_cast<std::int64_t>(rng() % 400'000'000)};
  // Log-normal-ish latencies around a second, as LLM calls are.
  std::lognormal_distribution<double> latency(6.9, 0.6);
  r.latency_ms = latency(rng);
  r.status = rng() % 20 == 0 ? 502 : 200;
  r.attempts = 1;
  return r;
}

// Appends every record through the group-committing writer, never more than `window`
// outstanding (as a busy gateway would), and returns records/s.
// Records [first, first + count) are spread evenly over [end - span, end).
double fill(Ledger& ledger, std::uint64_t first, std::uint64_t count, double span, double end) {
  std::mt19937_64 rng(2026 + first);
  const double step = span / static_cast<double>(count);
  constexpr std::uint64_t kWindow = 50'000;
  std::mutex mutex;
  std::condition_variable drained;
  std::uint64_t outstanding = 0;
  std::atomic<std::uint64_t> failures{0};
  const auto started = Clock::now();
  for (std::uint64_t i = 0; i < count; ++i) {
    {
      std::unique_lock lock(mutex);
      drained.wait(lock, [&] { return outstanding < kWindow; });
      ++outstanding;
    }
    ledger.append(synthetic_record(rng, first + i, end - span + static_cast<double>(i) * step),
                  [&](Result<void> outcome) {
      if (!outcome) failures.fetch_add(1);
      std::lock_guard lock(mutex);
      --outstanding;
      drained.notify_one();
    });
    if (i % 1'000'000 == 999'999) std::cerr << fmt::format("  {} M records appended\n", (i + 1) / 1'000'000);
  }
  {
    std::unique_lock lock(mutex);
    drained.wait(lock, [&] { return outstanding == 0; });
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  if (failures.load() > 0) throw std::runtime_error(fmt::format("{} records failed to write", failures.load()));
  return static_cast<double>(count) / seconds;
}

// Records [first, first + count) spread evenly over [end - span, end), written through
// `backend` in batches of kDirectBatch (one transaction each, records and roll-ups
// together, as the writer thread writes them); returns records/s.
constexpr std::uint64_t kDirectBatch = 25'000;
double fill_direct(Backend& backend, std::uint64_t first, std::uint64_t count, double span, double end) {
  std::mt19937_64 rng(2026 + first);
  const double step = span / static_cast<double>(count);
  std::vector<KeyedRecord> batch;
  batch.reserve(kDirectBatch);
  const auto started = Clock::now();
  for (std::uint64_t i = 0; i < count; ++i) {
    batch.push_back(KeyedRecord{fmt::format("bench-{}", first + i),
                                synthetic_record(rng, first + i, end - span + static_cast<double>(i) * step)});
    if (batch.size() == kDirectBatch || i + 1 == count) {
      if (auto written = backend.write_batch(batch); !written) {
        throw std::runtime_error("write_batch failed: " + written.error().message);
      }
      batch.clear();
    }
    if (i % 1'000'000 == 999'999) std::cerr << fmt::format("  {} M records written\n", (i + 1) / 1'000'000);
  }
  return static_cast<double>(count) / std::chrono::duration<double>(Clock::now() - started).count();
}

std::unique_ptr<Backend> open_backend(const std::string& url) {
  if (url.starts_with("sqlite:")) {
    auto backend = SqliteBackend::open(url.substr(7));
    if (!backend) throw std::runtime_error(backend.error().message);
    return std::move(*backend);
  }
  auto backend = PostgresBackend::open(url);
  if (!backend) throw std::runtime_error(backend.error().message);
  return std::move(*backend);
}

struct Percentiles {
  double p50 = 0, p99 = 0;
};

Percentiles time_ms(int runs, const std::function<void()>& run) {
  std::vector<double> samples;
  for (int i = 0; i < runs; ++i) {
    const auto started = Clock::now();
    run();
    samples.push_back(std::chrono::duration<double, std::milli>(Clock::now() - started).count());
  }
  std::sort(samples.begin(), samples.end());
  const auto at = [&](double percent) {
    const auto rank = static_cast<std::size_t>(std::ceil(percent / 100 * static_cast<double>(samples.size())));
    return samples[std::max<std::size_t>(rank, 1) - 1];
  };
  return Percentiles{at(50), at(99)};
}

// The baseline: the same window's per-model figures from a scan of the raw rows (what
// /stats cost before roll-ups), on the same database.
constexpr const char* kRawScanSql =
    "SELECT model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_pico), SUM(latency_ms) "
    "FROM calls WHERE timestamp >= {} AND timestamp < {} GROUP BY model";

std::function<void(double, double)> raw_scan_for(const std::string& url) {
  if (url.starts_with("sqlite:")) {
    auto db = std::make_shared<sqlite::Database>(
        sqlite::Database::open(url.substr(7), sqlite::Database::OpenMode::existing_only).value());
    return [db](double since, double until) {
      auto rows = db->prepare(fmt::format(kRawScanSql, since, until)).value();
      while (rows.step().value()) {
      }
    };
  }
  auto target = pg::ConnectionTarget::parse(url).value();
  auto connection = std::make_shared<pg::Connection>(pg::Connection::open(target).value());
  return [connection](double since, double until) {
    if (!connection->query(fmt::format(kRawScanSql, since, until))) throw std::runtime_error("raw scan failed");
  };
}

// GET /stats/series as the dashboard asks it: each window ending now, rounded to its step.
void time_series(Ledger& ledger, double end) {
  struct SeriesWindow {
    const char* name;
    std::int64_t span, step;
  };
  // The dashboard's four windows and steps, then two finer steps (more roll-up rows read).
  const std::vector<SeriesWindow> windows{
      {"last hour, 1 min steps (page)", 3'600, 60},        {"last day, 1 h steps (page)", 86'400, 3'600},
      {"last 7 days, 6 h steps (page)", 604'800, 21'600},  {"last 30 days, 1 day steps (page)", 2'592'000, 86'400},
      {"last day, 15 min steps", 86'400, 900},             {"last 30 days, 6 h steps", 2'592'000, 21'600},
  };
  std::cout << "| /stats/series window | buckets | p50 | p99 |\n|---|---|---|---|\n";
  for (const SeriesWindow& window : windows) {
    const auto now = static_cast<std::int64_t>(end);
    const SeriesQuery query{(now - window.span) / window.step * window.step, (now / window.step + 1) * window.step,
                            window.step};
    const Percentiles series = time_ms(41, [&] {
      if (!ledger.series(query)) throw std::runtime_error("series failed");
    });
    std::cout << fmt::format("| {} | {} | {:.2f} ms | {:.2f} ms |\n", window.name,
                             (query.until - query.since) / query.step, series.p50, series.p99);
  }
}

// /stats over several windows, each against the same figures from a scan of the raw rows.
void time_stats(Ledger& ledger, const std::string& url, double span, double end) {
  struct Window {
    const char* name;
    double since, until;
  };
  // "Last N" windows are asked as /stats?since=... is: open at the end. The last row puts
  // both ends inside minutes where calls arrive thousands a second, the worst case: those
  // partial minutes are read from raw rows.
  const double open = 1e300;
  const std::vector<Window> windows{
      {"whole ledger", -1e300, open},
      {"last 24 h (since only)", end - 86'400 - 17.25, open},
      {"last hour (since only)", end - 3'600, open},
      {"last 5 minutes (since only)", end - 300, open},
      {"one week, both ends unaligned", end - span / 2 - 7 * 86'400 + 123.5, end - span / 2 + 59.75},
      {"ends inside the live minute", end - 3'600 - 30.5, end - 30.5},
  };
  auto raw_scan = raw_scan_for(url);
  std::cout << "| window | /stats p50 | /stats p99 | raw scan p50 (baseline) | speed-up |\n|---|---|---|---|---|\n";
  for (const Window& window : windows) {
    // The whole ledger is asked the way /stats asks it: with open ends.
    const StatsQuery query{window.since < -1e299 ? std::nullopt : std::optional(window.since),
                           window.until > 1e299 ? std::nullopt : std::optional(window.until), 10};
    const Percentiles stats = time_ms(41, [&] {
      if (!ledger.stats(query)) throw std::runtime_error("stats failed");
    });
    const Percentiles raw = time_ms(3, [&] { raw_scan(window.since, window.until); });
    std::cout << fmt::format("| {} | {:.2f} ms | {:.2f} ms | {:.1f} ms | {:.0f}x |\n", window.name, stats.p50,
                             stats.p99, raw.p50, raw.p50 / stats.p50);
  }
}

void run(const Options& options) {
  std::string url;
  fs::path dir;
  if (options.backend == "sqlite" && !options.keep.empty()) {
    url = "sqlite:" + options.keep;
  } else if (options.backend == "sqlite") {
    std::string pattern = (fs::temp_directory_path() / "turnout-scale-XXXXXX").string();
    dir = ::mkdtemp(pattern.data());
    url = "sqlite:" + (dir / "ledger.db").string();
  } else {
    const char* pg_url = std::getenv("TURNOUT_BENCH_PG_URL");
    if (pg_url == nullptr) throw std::invalid_argument("--backend postgresql needs TURNOUT_BENCH_PG_URL");
    url = pg_url;
  }
  const double end = unix_now();
  std::unique_ptr<Ledger> ledger;
  std::cout << fmt::format("ledger at scale: {} backend, {} calls over {} days\n", options.backend, options.calls,
                           options.days);
  // History: the calls spread over the days before now (each write batch spans minutes,
  // so it touches many roll-up rows). Live: the last 200,000 arrive within one minute, as
  // under load, and a batch shares its roll-up rows.
  const std::uint64_t live = std::min<std::uint64_t>(200'000, options.calls / 10);
  if (options.fill == "none") {
    const auto started = Clock::now();
    ledger = open_ledger(url).value();
    std::cout << fmt::format("no fill: opened the existing ledger (with any migration) in {:.1f} s\n",
                             std::chrono::duration<double>(Clock::now() - started).count());
  } else if (options.fill == "api") {
    ledger = open_ledger(url).value();
    const double history_rate = fill(*ledger, 0, options.calls - live, options.days * 86'400 - 60, end - 60);
    const double live_rate = fill(*ledger, options.calls - live, live, 60, end);
    std::cout << fmt::format("write throughput: {:.0f} records/s loading history, {:.0f} records/s live "
                             "(group commit, public API)\n",
                             history_rate, live_rate);
  } else {
    double history_rate = 0, live_rate = 0;
    {
      auto backend = open_backend(url);  // migrates the new database; closed before the Ledger opens
      history_rate = fill_direct(*backend, 0, options.calls - live, options.days * 86'400 - 60, end - 60);
      live_rate = fill_direct(*backend, options.calls - live, live, 60, end);
    }
    ledger = open_ledger(url).value();
    std::cout << fmt::format("direct fill: {:.0f} records/s history, {:.0f} records/s live (Backend::write_batch, "
                             "{} records a transaction)\n",
                             history_rate, live_rate, kDirectBatch);
  }

  if (options.measure == "all") time_stats(*ledger, url, options.days * 86'400, end);
  time_series(*ledger, end);
  ledger->close();
  if (!dir.empty()) {
    std::error_code ignored;
    std::cout << fmt::format("SQLite file: {:.0f} MB\n", static_cast<double>(fs::file_size(dir / "ledger.db")) / 1e6);
    fs::remove_all(dir, ignored);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    run(parse_options(argc, argv));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "ledger_scale_bench: " << e.what() << "\n";
    return 1;
  }
}
