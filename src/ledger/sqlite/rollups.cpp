#include "ledger/sqlite/rollups.hpp"

#include "ledger/record_scan.hpp"
#include "ledger/sqlite/schema.hpp"

#include <fmt/format.h>

#include <string_view>

namespace turnout::ledger::sqlite {
namespace {

constexpr std::string_view kUpsertTotalsSql = R"sql(
  INSERT INTO rollups (width, bucket, instance_id, model, route, calls, errors, prompt_tokens, completion_tokens,
                       priced_calls, priced_cost_pico, latency_sum, baseline_cost_pico, savings_pico)
  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
  ON CONFLICT (width, bucket, instance_id, model, route) DO UPDATE SET
    calls = calls + excluded.calls,
    errors = errors + excluded.errors,
    prompt_tokens = prompt_tokens + excluded.prompt_tokens,
    completion_tokens = completion_tokens + excluded.completion_tokens,
    priced_calls = priced_calls + excluded.priced_calls,
    priced_cost_pico = priced_cost_pico + excluded.priced_cost_pico,
    latency_sum = latency_sum + excluded.latency_sum,
    baseline_cost_pico = baseline_cost_pico + excluded.baseline_cost_pico,
    savings_pico = savings_pico + excluded.savings_pico
)sql";

constexpr std::string_view kUpsertKeyTotalsSql = R"sql(
  INSERT INTO key_rollups (width, bucket, instance_id, client_key_id, calls, prompt_tokens, completion_tokens,
                           priced_calls, priced_cost_pico)
  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
  ON CONFLICT (width, bucket, instance_id, client_key_id) DO UPDATE SET
    calls = calls + excluded.calls,
    prompt_tokens = prompt_tokens + excluded.prompt_tokens,
    completion_tokens = completion_tokens + excluded.completion_tokens,
    priced_calls = priced_calls + excluded.priced_calls,
    priced_cost_pico = priced_cost_pico + excluded.priced_cost_pico
)sql";

constexpr std::string_view kUpsertLatencySql = R"sql(
  INSERT INTO latency_rollups (width, bucket, instance_id, model, latency_bucket, count, min_ms, max_ms)
  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
  ON CONFLICT (width, bucket, instance_id, model, latency_bucket) DO UPDATE SET
    count = count + excluded.count,
    min_ms = MIN(min_ms, excluded.min_ms),
    max_ms = MAX(max_ms, excluded.max_ms)
)sql";

constexpr std::size_t kBackfillChunk = 50'000;

Result<void> run(Statement& statement) {
  auto stepped = statement.step();
  statement.reset();
  if (!stepped) {
    return stepped.error();
  }
  return {};
}

}  // namespace

Result<void> write_rollups(Database& db, const RollupBuilder& rollups) {
  auto totals = db.prepare(kUpsertTotalsSql);
  if (!totals) {
    return totals.error();
  }
  for (const auto& [key, row] : rollups.totals()) {
    totals->bind(1, key.width);
    totals->bind(2, key.bucket);
    totals->bind(3, std::string_view(key.instance_id));
    totals->bind(4, std::string_view(key.model));
    totals->bind(5, std::string_view(key.route));
    totals->bind(6, row.calls);
    totals->bind(7, row.errors);
    totals->bind(8, row.prompt_tokens);
    totals->bind(9, row.completion_tokens);
    totals->bind(10, row.priced_calls);
    totals->bind(11, row.priced_cost);
    totals->bind(12, row.latency_sum);
    totals->bind(13, row.baseline_cost);
    totals->bind(14, row.savings);
    if (auto done = run(*totals); !done) {
      return done.error();
    }
  }
  auto key_totals = db.prepare(kUpsertKeyTotalsSql);
  if (!key_totals) {
    return key_totals.error();
  }
  for (const auto& [key, row] : rollups.key_totals()) {
    key_totals->bind(1, key.width);
    key_totals->bind(2, key.bucket);
    key_totals->bind(3, std::string_view(key.instance_id));
    key_totals->bind(4, std::string_view(key.client_key_id));
    key_totals->bind(5, row.calls);
    key_totals->bind(6, row.prompt_tokens);
    key_totals->bind(7, row.completion_tokens);
    key_totals->bind(8, row.priced_calls);
    key_totals->bind(9, row.priced_cost);
    if (auto done = run(*key_totals); !done) {
      return done.error();
    }
  }
  auto latencies = db.prepare(kUpsertLatencySql);
  if (!latencies) {
    return latencies.error();
  }
  for (const auto& [key, cell] : rollups.latencies()) {
    latencies->bind(1, key.width);
    latencies->bind(2, key.bucket);
    latencies->bind(3, std::string_view(key.instance_id));
    latencies->bind(4, std::string_view(key.model));
    latencies->bind(5, std::int64_t{key.latency_bucket});
    latencies->bind(6, static_cast<std::int64_t>(cell.count));
    latencies->bind(7, cell.min_ms);
    latencies->bind(8, cell.max_ms);
    if (auto done = run(*latencies); !done) {
      return done.error();
    }
  }
  return {};
}

Result<void> prune_second_rollups(Database& db, double cutoff) {
  for (std::string_view table : {"rollups", "key_rollups", "latency_rollups"}) {
    auto remove = db.prepare(fmt::format("DELETE FROM {} WHERE width = ?1 AND bucket < ?2", table));
    if (!remove) {
      return remove.error();
    }
    remove->bind(1, kSecondWidth);
    remove->bind(2, cutoff);
    if (auto done = run(*remove); !done) {
      return done.error();
    }
  }
  return {};
}

Result<void> backfill_rollups(Database& db) {
  if (auto ready = ensure_call_columns(db); !ready) {
    return ready.error();
  }
  RollupBuilder rollups(unix_now() - kSecondRollupLifetime);
  std::size_t pending = 0;
  auto scanned = scan_records(db, RecordWindow{}, [&](const CallRecord& record) -> Result<void> {
    if (auto added = rollups.add(record); !added) {
      return added.error();
    }
    if (++pending < kBackfillChunk) {
      return {};
    }
    pending = 0;
    auto written = write_rollups(db, rollups);
    rollups.clear();
    return written;
  });
  if (!scanned) {
    return scanned.error();
  }
  return write_rollups(db, rollups);
}

}  // namespace turnout::ledger::sqlite
