#include "ledger/postgres/rollups.hpp"

#include "ledger/postgres/copy.hpp"
#include "ledger/postgres/schema.hpp"
#include "ledger/record_scan.hpp"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>

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
  CREATE TEMPORARY TABLE IF NOT EXISTS incoming_endpoint_rollups (
    width BIGINT, bucket BIGINT, instance_id TEXT, endpoint TEXT, calls BIGINT, errors BIGINT, prompt_tokens BIGINT,
    completion_tokens BIGINT, priced_calls BIGINT, priced_cost_pico BIGINT, latency_sum DOUBLE PRECISION
  ) ON COMMIT DELETE ROWS;
  CREATE TEMPORARY TABLE IF NOT EXISTS incoming_histograms (
    width BIGINT, bucket BIGINT, instance_id TEXT, model TEXT
  ) ON COMMIT DELETE ROWS;
  CREATE TEMPORARY TABLE IF NOT EXISTS merged_histograms (
    width BIGINT, bucket BIGINT, instance_id TEXT, model TEXT, cells TEXT
  ) ON COMMIT DELETE ROWS;
)sql";

const std::string kCopyTotalsSql = "COPY incoming_rollups FROM STDIN";
const std::string kCopyKeyTotalsSql = "COPY incoming_key_rollups FROM STDIN";
const std::string kCopyEndpointTotalsSql = "COPY incoming_endpoint_rollups FROM STDIN";
const std::string kCopyHistogramKeysSql = "COPY incoming_histograms FROM STDIN";
const std::string kCopyMergedHistogramsSql = "COPY merged_histograms FROM STDIN";

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

const std::string kMergeEndpointTotalsSql = R"sql(
  INSERT INTO endpoint_rollups SELECT * FROM incoming_endpoint_rollups
  ORDER BY width, bucket, instance_id, endpoint
  ON CONFLICT (width, bucket, instance_id, endpoint) DO UPDATE SET
    calls = endpoint_rollups.calls + excluded.calls,
    errors = endpoint_rollups.errors + excluded.errors,
    prompt_tokens = endpoint_rollups.prompt_tokens + excluded.prompt_tokens,
    completion_tokens = endpoint_rollups.completion_tokens + excluded.completion_tokens,
    priced_calls = endpoint_rollups.priced_calls + excluded.priced_calls,
    priced_cost_pico = endpoint_rollups.priced_cost_pico + excluded.priced_cost_pico,
    latency_sum = endpoint_rollups.latency_sum + excluded.latency_sum
)sql";

// A histogram row holds all its cells as one text value (latency_histogram.hpp), so it is
// read, merged here and written back: first every row the batch touches is made to exist,
// then locked (both in key order, as above), then updated. Rows are keyed by instance, so
// only two processes given the same instance id ever wait for each other here.
const std::string kCreateHistogramsSql = R"sql(
  INSERT INTO latency_histograms SELECT width, bucket, instance_id, model, '' FROM incoming_histograms
  ORDER BY width, bucket, instance_id, model
  ON CONFLICT (width, bucket, instance_id, model) DO NOTHING
)sql";

const std::string kLockHistogramsSql = R"sql(
  SELECT h.width, h.bucket, h.instance_id, h.model, h.cells
  FROM latency_histograms h JOIN incoming_histograms i USING (width, bucket, instance_id, model)
  ORDER BY h.width, h.bucket, h.instance_id, h.model
  FOR UPDATE OF h
)sql";

const std::string kUpdateHistogramsSql = R"sql(
  UPDATE latency_histograms h SET cells = m.cells FROM merged_histograms m
  WHERE h.width = m.width AND h.bucket = m.bucket AND h.instance_id = m.instance_id AND h.model = m.model
)sql";

// The staging tables empty themselves at commit; a backfill merges several chunks in one
// transaction, so it empties them after each merge.
constexpr std::string_view kClearStagingSql =
    "DELETE FROM incoming_rollups; DELETE FROM incoming_key_rollups; DELETE FROM incoming_endpoint_rollups; "
    "DELETE FROM incoming_histograms; DELETE FROM merged_histograms";

// Records per backfill chunk: the roll-up deltas are merged and the builder emptied after
// each, so memory stays bounded on a ledger of any size.
constexpr std::size_t kBackfillChunk = 50'000;

// The rows as COPY text data, in key order.
template <class Key, class Totals>
std::string rows_copy_data(const std::map<Key, Totals>& rows) {
  std::string out;
  for (const auto& [key, row] : rows) {
    CopyRowWriter copy(out);
    visit_columns(key, row, [&](auto value) {
      if constexpr (std::is_same_v<decltype(value), std::string_view>) {
        copy.text(value);
      } else if constexpr (std::is_same_v<decltype(value), double>) {
        copy.real(value);
      } else {
        copy.integer(value);
      }
    });
    copy.end_row();
  }
  return out;
}

std::string histogram_keys_copy_data(const RollupBuilder& rollups) {
  std::string out;
  for (const auto& [key, cells] : rollups.latencies()) {
    CopyRowWriter copy(out);
    copy.integer(key.width);
    copy.integer(key.bucket);
    copy.text(key.instance_id);
    copy.text(key.model);
    copy.end_row();
  }
  return out;
}

// The locked rows (kLockHistogramsSql) with the batch's cells added, as COPY data.
turnout::Result<std::string> merged_histograms_copy_data(const QueryResult& stored, const RollupBuilder& rollups) {
  // Every row was just created or found; one missing would drop the batch's cells for it.
  if (static_cast<std::size_t>(stored.rows()) != rollups.latencies().size()) {
    return make_error("the latency histogram rows of the batch could not all be locked");
  }
  std::string out;
  for (int row = 0; row < stored.rows(); ++row) {
    auto width = stored.integer(row, 0);
    auto bucket = stored.integer(row, 1);
    if (!width || !bucket) {
      return make_error("a latency histogram row has a malformed key");
    }
    const HistogramKey key{*width, *bucket, std::string(stored.text(row, 2)), std::string(stored.text(row, 3))};
    const auto added = rollups.latencies().find(key);
    if (added == rollups.latencies().end()) {
      return make_error("a locked latency histogram row is not one of the batch's");
    }
    LatencyCells cells = added->second;
    if (auto decoded = decode_latency_cells(stored.text(row, 4), cells); !decoded) {
      return decoded.error();
    }
    CopyRowWriter copy(out);
    copy.integer(key.width);
    copy.integer(key.bucket);
    copy.text(key.instance_id);
    copy.text(key.model);
    copy.text(encode_latency_cells(cells));
    copy.end_row();
  }
  return turnout::Result<std::string>(boost::system::in_place_value, std::move(out));
}

turnout::Result<void> write_histograms(Connection& connection, const RollupBuilder& rollups) {
  if (auto copied = connection.copy_in(kCopyHistogramKeysSql, histogram_keys_copy_data(rollups)); !copied) {
    return copied.error();
  }
  if (auto created = connection.query(kCreateHistogramsSql); !created) {
    return created.error();
  }
  auto stored = connection.query(kLockHistogramsSql);
  if (!stored) {
    return stored.error();
  }
  auto merged = merged_histograms_copy_data(*stored, rollups);
  if (!merged) {
    return merged.error();
  }
  if (auto copied = connection.copy_in(kCopyMergedHistogramsSql, *merged); !copied) {
    return copied.error();
  }
  if (auto updated = connection.query(kUpdateHistogramsSql); !updated) {
    return updated.error();
  }
  return {};
}

}  // namespace

turnout::Result<void> write_rollups(Connection& connection, const RollupBuilder& rollups) {
  if (rollups.empty()) {
    return {};
  }
  if (auto staged = connection.exec(kStagingSql); !staged) {
    return staged.error();
  }
  if (auto copied = connection.copy_in(kCopyTotalsSql, rows_copy_data(rollups.totals())); !copied) {
    return copied.error();
  }
  if (auto copied = connection.copy_in(kCopyKeyTotalsSql, rows_copy_data(rollups.key_totals())); !copied) {
    return copied.error();
  }
  if (auto merged = connection.query(kMergeTotalsSql); !merged) {
    return merged.error();
  }
  if (auto merged = connection.query(kMergeKeyTotalsSql); !merged) {
    return merged.error();
  }
  // A backfill from before the endpoint table has no endpoint rows (RollupBuilder's by_endpoint).
  if (!rollups.endpoint_totals().empty()) {
    if (auto copied = connection.copy_in(kCopyEndpointTotalsSql, rows_copy_data(rollups.endpoint_totals())); !copied) {
      return copied.error();
    }
    if (auto merged = connection.query(kMergeEndpointTotalsSql); !merged) {
      return merged.error();
    }
  }
  if (auto written = write_histograms(connection, rollups); !written) {
    return written.error();
  }
  return connection.exec(kClearStagingSql);
}

turnout::Result<void> prune_second_rollups(Connection& connection, double cutoff) {
  const std::array<Param, 2> params{std::to_string(kSecondWidth),
                                    std::to_string(static_cast<std::int64_t>(std::floor(cutoff)))};
  for (std::string_view table : {"rollups", "key_rollups", "endpoint_rollups", "latency_histograms"}) {
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
  RollupBuilder rollups(unix_now() - kSecondRollupLifetime, /*by_endpoint=*/false);
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

turnout::Result<void> backfill_missing_rollups(Connection& connection) {
  auto built = connection.query("SELECT EXISTS (SELECT 1 FROM rollups) OR NOT EXISTS (SELECT 1 FROM calls)");
  if (!built) {
    return built.error();
  }
  return built->text(0, 0) == "t" ? turnout::Result<void>{} : backfill_rollups(connection);
}

}  // namespace turnout::ledger::pg
