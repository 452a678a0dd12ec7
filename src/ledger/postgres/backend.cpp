#include "ledger/postgres/backend.hpp"

#include "ledger/installation_secret.hpp"
#include "ledger/postgres/schema.hpp"
#include "ledger/postgres/stats.hpp"
#include "ledger/postgres/copy.hpp"
#include "ledger/postgres/hold_settlement.hpp"
#include "ledger/postgres/rollups.hpp"
#include "ledger/rollup.hpp"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <string_view>
#include <unordered_set>

namespace turnout::ledger {
namespace {

constexpr std::size_t kMaxIdleReaders = 4;

// Every session: float8 values are sent back in their shortest exact form whatever the
// server's default, so latencies and timestamps round-trip bit for bit.
constexpr std::string_view kSessionSetupSql = "SET extra_float_digits = 3";

// A batch is streamed into a per-session staging table with COPY (one round trip, no
// parameter limit), then moved into `calls` in one statement; the key conflict is the
// only one to skip: it means this exact record is already stored.
constexpr std::string_view kStagingSql = R"sql(
  CREATE TEMPORARY TABLE IF NOT EXISTS incoming_calls (
    position BIGINT, record_key TEXT, id TEXT, timestamp DOUBLE PRECISION, instance_id TEXT, client_key_id TEXT,
    requested_model TEXT, model TEXT, route TEXT, counted_prompt_tokens BIGINT, prompt_tokens BIGINT,
    completion_tokens BIGINT, cached_tokens BIGINT, usage_reported BOOLEAN, cost_pico BIGINT,
    baseline_cost_pico BIGINT, latency_ms DOUBLE PRECISION, ttft_ms DOUBLE PRECISION, status INTEGER,
    error_type TEXT, attempts INTEGER, stream BOOLEAN, endpoint TEXT, count_estimated BOOLEAN, count_partial BOOLEAN
  ) ON COMMIT DELETE ROWS
)sql";

constexpr std::string_view kColumns =
    "record_key, id, timestamp, instance_id, client_key_id, requested_model, model, route, counted_prompt_tokens, "
    "prompt_tokens, completion_tokens, cached_tokens, usage_reported, cost_pico, baseline_cost_pico, latency_ms, "
    "ttft_ms, status, error_type, attempts, stream, endpoint, count_estimated, count_partial";

const std::string& copy_sql() {
  static const std::string sql = fmt::format("COPY incoming_calls (position, {}) FROM STDIN", kColumns);
  return sql;
}

// ORDER BY position gives `seq` the batch's append order (ties in timestamp are shown in
// write order), whatever order the staging table's rows come back in.
const std::string& move_sql() {
  static const std::string sql =
      fmt::format("INSERT INTO calls ({0}) SELECT {0} FROM incoming_calls ORDER BY position "
                  "ON CONFLICT (record_key) DO NOTHING RETURNING record_key",
                  kColumns);
  return sql;
}

// Tokens are stored as signed 64-bit integers; counts beyond 2^63 do not occur.
std::int64_t as_integer(std::uint64_t count) { return static_cast<std::int64_t>(count); }

void append_copy_row(std::string& out, std::size_t position, const KeyedRecord& keyed) {
  const CallRecord& r = keyed.record;
  pg::CopyRowWriter row(out);
  row.integer(static_cast<std::int64_t>(position));
  row.text(keyed.key);
  row.text(r.id);
  row.real(r.timestamp);
  row.text(r.instance_id);
  row.text(r.client_key_id);
  row.text(r.requested_model);
  row.text(r.model);
  row.text(r.route);
  r.counted_prompt_tokens ? row.integer(as_integer(*r.counted_prompt_tokens)) : row.null();
  row.integer(as_integer(r.usage.prompt_tokens));
  row.integer(as_integer(r.usage.completion_tokens));
  row.integer(as_integer(r.usage.cached_tokens));
  row.boolean(r.usage_reported);
  r.cost ? row.integer(r.cost->pico) : row.null();
  r.baseline_cost ? row.integer(r.baseline_cost->pico) : row.null();
  row.real(r.latency_ms);
  r.ttft_ms ? row.real(*r.ttft_ms) : row.null();
  row.integer(r.status);
  row.text(r.error_type);
  row.integer(r.attempts);
  row.boolean(r.stream);
  row.text(r.endpoint);
  row.boolean(r.count_estimated);
  row.boolean(r.count_partial);
  row.end_row();
}

}  // namespace

Result<std::unique_ptr<PostgresBackend>> PostgresBackend::open(std::string_view url) {
  auto target = pg::ConnectionTarget::parse(url);
  if (!target) {
    return target.error();
  }
  std::unique_ptr<PostgresBackend> backend(new PostgresBackend(std::move(*target)));
  auto connection = backend->connect();
  if (!connection) {
    return connection.error();
  }
  if (auto migrated = pg::migrate(*connection, pg::ledger_migrations()); !migrated) {
    return make_error(fmt::format("ledger database '{}': {}", backend->target_.display, migrated.error().message));
  }
  backend->writer_.emplace(std::move(*connection));
  return backend;
}

Result<pg::Connection> PostgresBackend::connect() const {
  auto connection = pg::Connection::open(target_);
  if (!connection) {
    return connection.error();
  }
  if (auto set = connection->exec(kSessionSetupSql); !set) {
    return set.error();
  }
  return connection;
}

Result<void> PostgresBackend::write_batch(std::span<const KeyedRecord> records) {
  // A connection that was fine before this batch may have been cut since (server
  // restart, failover): then one fresh connection gets a second try at once. Re-sending is
  // safe: the keys make a batch that did commit a no-op.
  const bool reused = writer_.has_value();
  for (int attempt = 0;; ++attempt) {
    if (!writer_) {
      auto connection = connect();
      if (!connection) {
        return connection.error();
      }
      writer_.emplace(std::move(*connection));
    }
    auto written = insert_all(*writer_, records);
    if (written) {
      return {};
    }
    const bool was_broken = writer_->broken();
    writer_.reset();  // a failed session may hold half-finished state; start clean next time
    if (!(reused && was_broken && attempt == 0)) {
      return make_error(fmt::format("ledger database '{}': {}", target_.display, written.error().message));
    }
  }
}

Result<void> PostgresBackend::insert_all(pg::Connection& connection, std::span<const KeyedRecord> records) {
  copy_buffer_.clear();
  for (std::size_t position = 0; position < records.size(); ++position) {
    append_copy_row(copy_buffer_, position, records[position]);
  }
  auto transaction = pg::Transaction::begin(connection);
  if (!transaction) {
    return transaction.error();
  }
  if (auto staged = connection.exec(kStagingSql); !staged) {
    return staged.error();
  }
  if (auto copied = connection.copy_in(copy_sql(), copy_buffer_); !copied) {
    return copied.error();
  }
  auto moved = connection.query(move_sql());
  if (!moved) {
    return moved.error();
  }
  // Only records this transaction really stored go into the roll-ups: a re-sent batch
  // whose first attempt did commit must not be counted twice.
  std::unordered_set<std::string_view> stored;
  stored.reserve(static_cast<std::size_t>(moved->rows()));
  for (int row = 0; row < moved->rows(); ++row) {
    stored.insert(moved->text(row, 0));
  }
  RollupBuilder rollups(unix_now() - kSecondRollupLifetime);
  std::vector<pg::HoldCharge> charges;  // holds of the records stored now, settled with them
  for (const KeyedRecord& keyed : records) {
    if (stored.contains(keyed.key)) {
      if (auto added = rollups.add(keyed.record); !added) {
        return added.error();
      }
      if (!keyed.record.hold_id.empty()) {
        charges.push_back({keyed.record.hold_id, keyed.record.cost ? keyed.record.cost->pico : 0,
                           call_tokens(keyed.record)});
      }
    }
  }
  if (auto written = pg::write_rollups(connection, rollups); !written) {
    return written.error();
  }
  if (auto settled = pg::settle_holds(connection, charges, false); !settled) {
    return settled.error();
  }
  return transaction->commit();
}

Result<void> PostgresBackend::prune_second_rollups(double cutoff) {
  if (!writer_) {
    auto connection = connect();
    if (!connection) {
      return connection.error();
    }
    writer_.emplace(std::move(*connection));
  }
  auto transaction = pg::Transaction::begin(*writer_);
  Result<void> pruned = transaction ? pg::prune_second_rollups(*writer_, cutoff) : Result<void>(transaction.error());
  if (pruned && transaction) {
    pruned = transaction->commit();
  }
  if (!pruned) {
    if (writer_->broken()) {
      writer_.reset();
    }
    return make_error(fmt::format("ledger database '{}': {}", target_.display, pruned.error().message));
  }
  return {};
}

Result<std::uint64_t> PostgresBackend::prune_before(double cutoff, std::uint64_t limit, bool /*fold_first*/) {
  if (!writer_) {
    auto connection = connect();
    if (!connection) {
      return connection.error();
    }
    writer_.emplace(std::move(*connection));
  }
  const std::array<pg::Param, 2> params{fmt::format("{}", cutoff), std::to_string(limit)};
  auto removed = writer_->query(
      "WITH expired AS (SELECT seq FROM calls WHERE timestamp < $1 ORDER BY timestamp LIMIT $2) "
      "DELETE FROM calls WHERE seq IN (SELECT seq FROM expired) RETURNING 1",
      params);
  if (!removed) {
    if (writer_->broken()) {
      writer_.reset();
    }
    return make_error(fmt::format("ledger database '{}': {}", target_.display, removed.error().message));
  }
  return static_cast<std::uint64_t>(removed->rows());
}

Result<std::string> PostgresBackend::installation_secret(const std::string& candidate) {
  if (!writer_) {
    auto connection = connect();
    if (!connection) {
      return connection.error();
    }
    writer_.emplace(std::move(*connection));
  }
  // One statement: the stored secret, inserting the candidate first when there is none.
  // An instance that stored its own at the same moment commits after this statement's
  // snapshot was taken, so neither branch has a row: the next statement sees it.
  const std::array<pg::Param, 2> params{std::string(kInstallationSecretName), candidate};
  Result<pg::QueryResult> stored = make_error("not queried");
  for (int attempt = 0; attempt < 3; ++attempt) {
    stored = writer_->query(
        "WITH inserted AS (INSERT INTO metadata (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING "
        "RETURNING value) SELECT value FROM inserted UNION ALL SELECT value FROM metadata WHERE name = $1",
        params);
    if (!stored || stored->rows() > 0) break;
  }
  if (!stored || stored->rows() < 1) {
    if (writer_->broken()) {
      writer_.reset();
    }
    return make_error(fmt::format("ledger database '{}': the installation secret cannot be read{}", target_.display,
                                  stored ? "" : ": " + stored.error().message));
  }
  return Result<std::string>(boost::system::in_place_value, std::string(stored->text(0, 0)));
}

Result<pg::Connection> PostgresBackend::acquire_reader(bool& reused) {
  {
    std::lock_guard lock(readers_mutex_);
    if (!idle_readers_.empty()) {
      pg::Connection reader = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      reused = true;
      return reader;
    }
  }
  reused = false;
  return connect();
}

void PostgresBackend::release_reader(pg::Connection reader) {
  std::lock_guard lock(readers_mutex_);
  if (idle_readers_.size() < kMaxIdleReaders) {
    idle_readers_.push_back(std::move(reader));
  }
}

template <class Report, class Query>
Result<Report> PostgresBackend::read(turnout::Result<Report> (*run)(pg::Connection&, const Query&), const Query& query) {
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    auto reader = acquire_reader(reused);
    if (!reader) {
      return reader.error();
    }
    auto report = run(*reader, query);
    if (report) {
      release_reader(std::move(*reader));
      return report;
    }
    // An idle connection may have been cut while it waited: retry once on a fresh one.
    // A reader that failed is closed, never pooled again.
    if (!(reused && reader->broken() && attempt == 0)) {
      return make_error(fmt::format("ledger database '{}': {}", target_.display, report.error().message));
    }
  }
}

Result<StatsReport> PostgresBackend::stats(const StatsQuery& query) { return read(&pg::query_stats, query); }

Result<SeriesReport> PostgresBackend::series(const SeriesQuery& query) { return read(&pg::query_series, query); }

}  // namespace turnout::ledger
