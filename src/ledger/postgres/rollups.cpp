#include "ledger/postgres/rollups.hpp"

#include "ledger/postgres/copy.hpp"
#include "ledger/postgres/schema.hpp"
#include "ledger/record_scan.hpp"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <string>
#include <string_view>

namespace turnout::ledger::pg {
namespace {

constexpr std::string_view kStagingSql = R"sql(
  CREATE TEMPORARY TABLE IF NOT EXISTS incoming_rollups (
    width BIGINT, bucket BIGINT, instance_id TEXT, model TEXT, route TEXT, calls BIGINT, errors BIGINT, prompt_tokens BIGINT, completion_tokens BIGINT, priced_calls BIGINT, priced_cost_pico BIGINT,
    latency_sum DOUBLE PRECISION, baseline_cost_pico BIGINT, savings_pico BIGINT
  ) ON COMMIT DELETE ROWS;
  CREATE TEMPORARY TABLE IF NOT EXISTS incoming_key_rollups (
    width BIGINT, bucket BIGINT, instance_id TEXT, client_key_id TEXT, calls BIGINT, prompt_tokens BIGINT,
    completion_tokens BIGINT, priced_calls BIGINT, priced_cost_pico BIGINT
  ) ON COMMIT DELETE ROWS;
  CREATE TEMPORARY TABLE IF NOT EXISTS incoming_latency_rollups (
    width BIGINT, bucket BIGINT, instance_id TEXT, model TEXT, latency_bucket INTEGER, count BIGINT,
    min_ms DOUBLE PRECISION, max_ms DOUBLE PRECISION
  ) ON COMMIT DELETE ROWS;
)sql";

const std::string kCopyTotalsSql = "COPY incoming_rollups FROM STDIN";
const std::string kCopyKeyTotalsSql = "COPY incoming_key_rollups FROM STDIN";
const std::string kCopyLatenciesSql = "COPY incoming_latency_rollups FROM STDIN";

// BIGINT + BIGINT beyond 64 bits is an error in PostgreSQL, never a wrapped value.
const std::string kMergeTotalsSql = R"sql(
  INSERT INTO rollups SELECT * FROM incoming_rollups
  ORDER BY width, bucket, instance_id, model, route
  ON CONFLICT (width, bucket, instance_id, model, route) DO UPDATE SET
    calls = rollups.calls + excluded.calls,
    errors = rollups.errors + excluded.errors,
    prompt_tokens = rollups.prompt_tokens + excluded.prompt_tokens,
    completion_tokens = rollups.completion_tokens + excluded.completion_tokens,
    priced_calls = rollups.priced_calls + excluded.priced_calls,
    priced_cost_pico = rollups.priced_cost_pico + excluded.priced_cost_pico,
    latency_sum = rollups.latency_sum + excluded.latency_sum,
    baseline_cost_pico = rollups.baseline_cost_pico + excluded.baseline_cost_pico,
    savings_pico = rollups.savings_pico + excluded.savings_pico
)sql";

const std::string kMergeKeyTotalsSql = R"sql(
  INSERT INTO key_rollups SELECT * FROM incoming_key_rollups
  ORDER BY width, bucket, instance_id, client_key_id
  ON CONFLICT (width, bucket, instance_id, client_key_id) DO UPDATE SET
    calls = key_rollups.calls + excluded.calls,
    prompt_tokens = key_rollups.prompt_tokens + excluded.prompt_tokens,
    completion_tokens = key_rollups.completion_tokens + excluded.completion_tokens,
    priced_calls = key_rollups.priced_calls + excluded.priced_calls,
    priced_cost_pico = key_rollups.priced_cost_pico + excluded.priced_cost_pico
)sql";

const std::string kMergeLatenciesSql = R"sql(
  INSERT INTO latency_rollups SELECT * FROM incoming_latency_rollups
  ORDER BY width, bucket, instance_id, model, latency_bucket
  ON CONFLICT (width, bucket, instance_id, model, latency_bucket) DO UPDATE SET
    count = latency_rollups.count + excluded.count,
    min_ms = LEAST(latency_rollups.min_ms, excluded.min_ms),
    max_ms = GREATEST(latency_rollups.max_ms, excluded.max_ms)
)sql";

// The staging tables empty themselves at commit; a backfill merges several chunks in one
// transaction, so it empties them after each merge.
constexpr std::string_view kClearStagingSql =
    "DELETE FROM incoming_rollups; DELETE FROM incoming_key_rollups; DELETE FROM incoming_latency_rollups";

// Records per backfill chunk: the roll-up deltas are merged and the builder emptied after
// each, so memory stays bounded on a ledger of any size.
constexpr std::size_t kBackfillChunk = 50'000;

std::string totals_copy_data(const RollupBuilder& rollups) {
  std::string out;
  for (const auto& [key, row] : rollups.totals()) {
    CopyRowWriter copy(out);
    copy.integer(key.width);
    copy.integer(key.bucket);
    copy.text(key.instance_id);
    copy.text(key.model);
    copy.text(key.route);
    copy.integer(row.calls);
    copy.integer(row.errors);
    copy.integer(row.prompt_tokens);
    copy.integer(row.completion_tokens);
    copy.integer(row.priced_calls);
    copy.integer(row.priced_cost);
    copy.real(row.latency_sum);
    copy.integer(row.baseline_cost);
    copy.integer(row.savings);
    copy.end_row();
  }
  return out;
}

std::string key_totals_copy_data(const RollupBuilder& rollups) {
  std::string out;
  for (const auto& [key, row] : rollups.key_totals()) {
    CopyRowWriter copy(out);
    copy.integer(key.width);
    copy.integer(key.bucket);
    copy.text(key.instance_id);
    copy.text(key.client_key_id);
    copy.integer(row.calls);
    copy.integer(row.prompt_tokens);
    copy.integer(row.completion_tokens);
    copy.integer(row.priced_calls);
    copy.integer(row.priced_cost);
    copy.end_row();
  }
  return out;
}

std::string latencies_copy_data(const RollupBuilder& rollups) {
  std::string out;
  for (const auto& [key, cell] : rollups.latencies()) {
    CopyRowWriter copy(out);
    copy.integer(key.width);
    copy.integer(key.bucket);
    copy.text(key.instance_id);
    copy.text(key.model);
    copy.integer(key.latency_bucket);
    copy.integer(static_cast<std::int64_t>(cell.count));
    copy.real(cell.min_ms);
    copy.real(cell.max_ms);
    copy.end_row();
  }
  return out;
}

}  // namespace

turnout::Result<void> write_rollups(Connection& connection, const RollupBuilder& rollups) {
  if (rollups.empty()) {
    return {};
  }
  if (auto staged = connection.exec(kStagingSql); !staged) {
    return staged.error();
  }
  if (auto copied = connection.copy_in(kCopyTotalsSql, totals_copy_data(rollups)); !copied) {
    return copied.error();
  }
  if (auto copied = connection.copy_in(kCopyKeyTotalsSql, key_totals_copy_data(rollups)); !copied) {
    return copied.error();
  }
  if (auto copied = connection.copy_in(kCopyLatenciesSql, latencies_copy_data(rollups)); !copied) {
    return copied.error();
  }
  if (auto merged = connection.query(kMergeTotalsSql); !merged) {
    return merged.error();
  }
  if (auto merged = connection.query(kMergeKeyTotalsSql); !merged) {
    return merged.error();
  }
  if (auto merged = connection.query(kMergeLatenciesSql); !merged) {
    return merged.error();
  }
  return connection.exec(kClearStagingSql);
}

turnout::Result<void> prune_second_rollups(Connection& connection, double cutoff) {
  const std::array<Param, 2> params{std::to_string(kSecondWidth),
                                    std::to_string(static_cast<std::int64_t>(std::floor(cutoff)))};
  for (std::string_view table : {"rollups", "key_rollups", "latency_rollups"}) {
    if (auto done = connection.query(fmt::format("DELETE FROM {} WHERE width = $1 AND bucket < $2", table), params);
        !done) {
      return done.error();
    }
  }
  return {};
}

turnout::Result<void> backfill_rollups(Connection& connection) {
  if (auto ready = connection.exec(kAddCallColumnsSql); !ready) {
    return ready.error();
  }
  RollupBuilder rollups(unix_now() - kSecondRollupLifetime);
  std::size_t pending = 0;
  auto scanned = scan_records(connection, RecordWindow{}, [&](const CallRecord& record) -> turnout::Result<void> {
    if (auto added = rollups.add(record); !added) {
      return added.error();
    }
    if (++pending < kBackfillChunk) {
      return {};
    }
    pending = 0;
    auto written = write_rollups(connection, rollups);
    rollups.clear();
    return written;
  });
  if (!scanned) {
    return scanned.error();
  }
  return write_rollups(connection, rollups);
}

}  // namespace turnout::ledger::pg
