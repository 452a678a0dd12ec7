#include "ledger/sqlite/rollups.hpp"

#include "ledger/record_scan.hpp"
#include "ledger/sqlite/schema.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
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

constexpr std::string_view kUpsertEndpointTotalsSql = R"sql(
  INSERT INTO endpoint_rollups (width, bucket, instance_id, endpoint, calls, errors, prompt_tokens,
                                completion_tokens, priced_calls, priced_cost_pico, latency_sum)
  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
  ON CONFLICT (width, bucket, instance_id, endpoint) DO UPDATE SET
    calls = calls + excluded.calls,
    errors = errors + excluded.errors,
    prompt_tokens = prompt_tokens + excluded.prompt_tokens,
    completion_tokens = completion_tokens + excluded.completion_tokens,
    priced_calls = priced_calls + excluded.priced_calls,
    priced_cost_pico = priced_cost_pico + excluded.priced_cost_pico,
    latency_sum = latency_sum + excluded.latency_sum
)sql";

// A histogram row is read, merged in memory and written back (the writer holds the
// write lock, so nothing changes in between): its cells are one text value.
constexpr std::string_view kReadHistogramSql = R"sql(
  SELECT cells FROM latency_histograms WHERE width = ?1 AND bucket = ?2 AND instance_id = ?3 AND model = ?4
)sql";

constexpr std::string_view kWriteHistogramSql = R"sql(
  INSERT INTO latency_histograms (width, bucket, instance_id, model, cells) VALUES (?1, ?2, ?3, ?4, ?5)
  ON CONFLICT (width, bucket, instance_id, model) DO UPDATE SET cells = excluded.cells
)sql";

constexpr std::size_t kBackfillChunk = 50'000;

constexpr std::string_view kReadWatermarkSql =
    "SELECT folded_through_seq, (SELECT COALESCE(MAX(seq), 0) FROM calls) FROM rollup_watermark";
constexpr std::string_view kMoveWatermarkSql = "UPDATE rollup_watermark SET folded_through_seq = ?1";

Result<void> run(Statement& statement) {
  auto stepped = statement.step();
  statement.reset();
  if (!stepped) {
    return stepped.error();
  }
  return {};
}

void bind_histogram_key(Statement& statement, const HistogramKey& key) {
  statement.bind(1, key.width);
  statement.bind(2, key.bucket);
  statement.bind(3, std::string_view(key.instance_id));
  statement.bind(4, std::string_view(key.model));
}

Result<void> write_histograms(Database& db, const RollupBuilder& rollups, HistogramRowCache* cache) {
  auto read_statement = db.cached(kReadHistogramSql);
  if (!read_statement) {
    return read_statement.error();
  }
  Statement& read = **read_statement;
  auto write_statement = db.cached(kWriteHistogramSql);
  if (!write_statement) {
    return write_statement.error();
  }
  Statement& write = **write_statement;
  std::string text;
  for (const auto& [key, added] : rollups.latencies()) {
    if (!cache || !cache->merge(key, added, text)) {
      LatencyCells cells = added;
      bind_histogram_key(read, key);
      auto found = read.step();
      if (found && *found) {
        auto decoded = decode_latency_cells(read.column_text(0), cells);
        if (!decoded) {
          read.reset();
          return decoded.error();
        }
      }
      read.reset();
      if (!found) {
        return found.error();
      }
      text = encode_latency_cells(cells);
      if (cache) cache->store(key, cells);
    }
    bind_histogram_key(write, key);
    write.bind(5, std::string_view(text));
    if (auto done = run(write); !done) {
      return done.error();
    }
  }
  return {};
}

// Adds each row's deltas to its stored row (created if missing), in key order. No rows:
// nothing is prepared, so a backfill may run before a later migration creates the table.
template <class Key, class Totals>
Result<void> upsert_rows(Database& db, std::string_view sql, const std::map<Key, Totals>& rows) {
  if (rows.empty()) {
    return {};
  }
  auto upsert_statement = db.cached(sql);
  if (!upsert_statement) {
    return upsert_statement.error();
  }
  Statement& upsert = **upsert_statement;
  for (const auto& [key, row] : rows) {
    int index = 0;
    visit_columns(key, row, [&](auto value) { upsert.bind(++index, value); });
    if (auto done = run(upsert); !done) {
      return done.error();
    }
  }
  return {};
}

}  // namespace

void HistogramRowCache::EncodedCell::encode() {
  size = static_cast<std::uint8_t>(write_latency_cell(text, bucket, cell) - text);
}

bool HistogramRowCache::merge(const HistogramKey& key, const LatencyCells& added, std::string& text) {
  const auto row = rows_.find(Series{key.width, key.instance_id, key.model});
  if (row == rows_.end() || row->second.bucket != key.bucket) return false;
  auto& cells = row->second.cells;
  for (const auto& [bucket, cell] : added) {
    auto slot = std::lower_bound(cells.begin(), cells.end(), bucket,
                                 [](const EncodedCell& stored, int wanted) { return stored.bucket < wanted; });
    if (slot == cells.end() || slot->bucket != bucket) {
      slot = cells.insert(slot, EncodedCell{});
      slot->bucket = bucket;
      slot->cell = cell;
    } else {
      add_latency_cell(slot->cell, cell);
    }
    slot->encode();
  }
  // The same text encode_latency_cells gives: cells in bucket order, separated by spaces.
  text.clear();
  for (const EncodedCell& cell : cells) {
    if (!text.empty()) text += ' ';
    text.append(cell.text, cell.size);
  }
  return true;
}

void HistogramRowCache::store(const HistogramKey& key, const LatencyCells& cells) {
  Row& row = rows_[Series{key.width, key.instance_id, key.model}];
  row.bucket = key.bucket;
  row.cells.clear();
  row.cells.reserve(cells.size());
  for (const auto& [bucket, cell] : cells) {  // a map: already in bucket order
    EncodedCell& encoded = row.cells.emplace_back();
    encoded.bucket = bucket;
    encoded.cell = cell;
    encoded.encode();
  }
}

Result<void> write_rollups(Database& db, const RollupBuilder& rollups, HistogramRowCache* histograms) {
  if (auto written = upsert_rows(db, kUpsertTotalsSql, rollups.totals()); !written) {
    return written.error();
  }
  if (auto written = upsert_rows(db, kUpsertKeyTotalsSql, rollups.key_totals()); !written) {
    return written.error();
  }
  // A backfill from before the endpoint table has no endpoint rows (RollupBuilder's by_endpoint).
  if (auto written = upsert_rows(db, kUpsertEndpointTotalsSql, rollups.endpoint_totals()); !written) {
    return written.error();
  }
  return write_histograms(db, rollups, histograms);
}

namespace {

struct Watermark {
  std::int64_t folded_through = 0;  // the last seq counted in the roll-ups
  std::int64_t newest = 0;          // the newest seq in calls
};

Result<Watermark> read_watermark(Database& db) {
  auto read_statement = db.cached(kReadWatermarkSql);
  if (!read_statement) {
    return read_statement.error();
  }
  Statement& read = **read_statement;
  auto row = read.step();
  if (!row || !*row) {
    read.reset();
    return row ? make_error("sqlite: the roll-up watermark row is missing") : row.error();
  }
  const Watermark mark{read.column_int(0), read.column_int(1)};
  read.reset();
  return mark;
}

}  // namespace

Result<bool> calls_await_fold(Database& db) {
  auto mark = read_watermark(db);
  if (!mark) {
    return mark.error();
  }
  return mark->newest > mark->folded_through;
}

Result<std::uint64_t> fold_new_calls(Database& db, HistogramRowCache* histograms) {
  auto mark = read_watermark(db);
  if (!mark) {
    return mark.error();
  }
  const std::int64_t folded_through = mark->folded_through;
  const std::int64_t newest = mark->newest;
  if (newest <= folded_through) {
    return std::uint64_t{0};
  }
  RollupBuilder rollups(unix_now() - kSecondRollupLifetime);
  std::uint64_t folded = 0;
  std::size_t pending = 0;  // a catch-up of many calls is written in chunks: memory stays bounded
  auto scanned = scan_records_by_seq(db, folded_through, newest, [&](const CallRecord& record) -> Result<void> {
    ++folded;
    if (auto added = rollups.add(record); !added) {
      return added.error();
    }
    if (++pending < kBackfillChunk) {
      return {};
    }
    pending = 0;
    auto written = write_rollups(db, rollups, histograms);
    rollups.clear();
    return written;
  });
  if (!scanned) {
    return scanned.error();
  }
  if (auto written = write_rollups(db, rollups, histograms); !written) {
    return written.error();
  }
  auto move_statement = db.cached(kMoveWatermarkSql);
  if (!move_statement) {
    return move_statement.error();
  }
  (*move_statement)->bind(1, newest);
  if (auto moved = run(**move_statement); !moved) {
    return moved.error();
  }
  return folded;
}

Result<std::uint64_t> fold_committed_calls(Database& db, const CommittedRollups& committed,
                                           HistogramRowCache* histograms, bool& from_memory) {
  from_memory = false;
  auto mark = read_watermark(db);
  if (!mark) {
    return mark.error();
  }
  const bool exactly_these = committed.calls > 0 && committed.first_seq == mark->folded_through + 1 &&
                             committed.last_seq == mark->newest &&
                             static_cast<std::uint64_t>(committed.last_seq - committed.first_seq + 1) == committed.calls;
  // A call older than this fold's cut-off gets no second rows from a read-back; the sums
  // gave it some if it was newer than theirs. Calls are stored as they happen, so only a
  // day-old spool or import ever takes the read-back for this.
  const double cutoff = unix_now() - kSecondRollupLifetime;
  if (!exactly_these || committed.oldest_timestamp <= std::max(cutoff, committed.seconds_since)) {
    return fold_new_calls(db, histograms);
  }
  if (auto written = write_rollups(db, committed.rollups, histograms); !written) {
    return written.error();
  }
  auto move_statement = db.cached(kMoveWatermarkSql);
  if (!move_statement) {
    return move_statement.error();
  }
  (*move_statement)->bind(1, mark->newest);
  if (auto moved = run(**move_statement); !moved) {
    return moved.error();
  }
  from_memory = true;
  return committed.calls;
}

Result<void> prune_second_rollups(Database& db, double cutoff) {
  for (std::string_view table : {"rollups", "key_rollups", "endpoint_rollups", "latency_histograms"}) {
    auto remove_statement = db.cached(fmt::format("DELETE FROM {} WHERE width = ?1 AND bucket < ?2", table));
    if (!remove_statement) {
      return remove_statement.error();
    }
    Statement& remove = **remove_statement;
    remove.bind(1, kSecondWidth);
    remove.bind(2, cutoff);
    if (auto done = run(remove); !done) {
      return done.error();
    }
  }
  return {};
}

Result<void> backfill_rollups(Database& db) {
  if (auto ready = ensure_call_columns(db); !ready) {
    return ready.error();
  }
  RollupBuilder rollups(unix_now() - kSecondRollupLifetime, /*by_endpoint=*/false);
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

Result<void> backfill_missing_rollups(Database& db) {
  auto built = db.query_int("SELECT EXISTS (SELECT 1 FROM rollups) OR NOT EXISTS (SELECT 1 FROM calls)");
  if (!built) {
    return built.error();
  }
  return *built != 0 ? Result<void>{} : backfill_rollups(db);
}

}  // namespace turnout::ledger::sqlite
