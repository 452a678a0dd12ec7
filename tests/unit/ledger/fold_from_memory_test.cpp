// The SQLite writer folds the roll-ups from the sums of the calls it committed, kept in
// memory, when they are exactly the calls after the watermark (issue 16), and reads the
// calls back otherwise. Either way the roll-ups equal a recomputation from `calls`.
#include "common/clock.hpp"
#include "ledger/sqlite/backend.hpp"
#include "ledger/sqlite/db.hpp"
#include "ledger_reference.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using namespace turnout;
using namespace turnout::ledger;
using namespace turnout::ledger::test;

constexpr const char* kRollupTables[] = {"rollups", "key_rollups", "endpoint_rollups", "latency_histograms"};

// Calls of the last few minutes (the sums give them second rows, as a read-back does).
std::vector<KeyedRecord> recent_calls(std::size_t count, std::uint32_t seed, const std::string& prefix) {
  const double now = unix_now();
  std::vector<KeyedRecord> out;
  std::size_t index = 0;
  for (CallRecord& record : random_records(count, seed)) {
    record.timestamp = now - 600 + (record.timestamp - 1'700'000'000);
    out.push_back({prefix + std::to_string(index++), std::move(record)});
  }
  return out;
}

std::unique_ptr<SqliteBackend> open_backend(const fs::path& file) {
  auto backend = SqliteBackend::open(file.string());
  EXPECT_TRUE(backend) << backend.error().message;
  return backend ? std::move(*backend) : nullptr;
}

void write_in_batches(SqliteBackend& backend, const std::vector<KeyedRecord>& records, std::size_t batch = 29) {
  for (std::size_t i = 0; i < records.size(); i += batch) {
    const auto part = std::span(records).subspan(i, std::min(batch, records.size() - i));
    const Result<void> written = backend.write_batch(part);
    ASSERT_TRUE(written) << written.error().message;
  }
}

void fold(SqliteBackend& backend) {
  auto folded = backend.fold_rollups();
  ASSERT_TRUE(folded) << folded.error().message;
}

// Every roll-up row, as text, in key order.
std::vector<std::string> rollup_rows(const fs::path& file) {
  auto db = sqlite::Database::open(file.string());
  EXPECT_TRUE(db) << db.error().message;
  std::vector<std::string> rows;
  for (const char* table : kRollupTables) {
    auto select = db->prepare(std::string("SELECT * FROM ") + table + " ORDER BY 1, 2, 3, 4, 5");
    EXPECT_TRUE(select) << select.error().message;
    while (select && *select->step()) {
      std::string row = table;
      for (int column = 0; column < select->columns(); ++column) row += "|" + select->column_text(column);
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

// The roll-ups rebuilt from the rows in `calls` (read back by a fresh fold of all of them).
std::vector<std::string> recomputed_rollup_rows(const fs::path& file) {
  {
    auto db = sqlite::Database::open(file.string());
    EXPECT_TRUE(db) << db.error().message;
    for (const char* table : kRollupTables) EXPECT_TRUE(db->exec(std::string("DELETE FROM ") + table));
    EXPECT_TRUE(db->exec("UPDATE rollup_watermark SET folded_through_seq = 0"));
  }
  auto backend = open_backend(file);  // its catch-up at open folds every call
  return rollup_rows(file);
}

TEST(FoldFromMemory, AloneTheWriterFoldsItsOwnSumsAndTheyEqualARecomputation) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  auto backend = open_backend(file);
  ASSERT_TRUE(backend);
  const auto calls = recent_calls(900, 3, "a");
  for (std::size_t part = 0; part < 3; ++part) {
    write_in_batches(*backend, std::vector(calls.begin() + 300 * part, calls.begin() + 300 * (part + 1)));
    write_in_batches(*backend, std::vector(calls.begin(), calls.begin() + 50));  // re-sent: stored once
    fold(*backend);
  }
  // The first fold after open reads back (nothing known of the file yet); the others not.
  EXPECT_EQ(backend->folds_from_memory(), 2u);
  backend.reset();
  const auto folded = rollup_rows(file);
  EXPECT_FALSE(folded.empty());
  EXPECT_EQ(folded, recomputed_rollup_rows(file));
}

TEST(FoldFromMemory, AnotherWritersCallsAreReadBackAndCountedOnce) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  auto writer = open_backend(file);
  auto other = open_backend(file);  // a second process on the same file
  ASSERT_TRUE(writer && other);
  write_in_batches(*writer, recent_calls(200, 5, "w1-"));
  fold(*writer);
  write_in_batches(*writer, recent_calls(200, 6, "w2-"));
  fold(*writer);
  const auto from_memory = writer->folds_from_memory();
  EXPECT_EQ(from_memory, 1u);

  // Interleaved with the other connection's calls: the sums are not the calls after the
  // watermark, so this fold reads them back.
  write_in_batches(*writer, recent_calls(100, 7, "w3-"));
  write_in_batches(*other, recent_calls(100, 8, "o1-"));
  write_in_batches(*writer, recent_calls(100, 9, "w4-"));
  fold(*writer);
  EXPECT_EQ(writer->folds_from_memory(), from_memory);
  // Alone again: from memory.
  write_in_batches(*writer, recent_calls(100, 10, "w5-"));
  fold(*writer);
  EXPECT_EQ(writer->folds_from_memory(), from_memory + 1);
  // The other connection folds the writer's calls: the writer's sums are stale and unused.
  write_in_batches(*writer, recent_calls(100, 11, "w6-"));
  fold(*other);
  write_in_batches(*writer, recent_calls(100, 12, "w7-"));
  fold(*writer);
  EXPECT_EQ(writer->folds_from_memory(), from_memory + 1);

  writer.reset();
  other.reset();
  EXPECT_EQ(rollup_rows(file), recomputed_rollup_rows(file));
}

TEST(FoldFromMemory, CallsLeftUnfoldedByACrashAreReadBackThenTheSumsResume) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  {
    auto backend = open_backend(file);
    ASSERT_TRUE(backend);
    write_in_batches(*backend, recent_calls(300, 13, "c1-"));
    fold(*backend);
    write_in_batches(*backend, recent_calls(300, 14, "c2-"));  // killed before the fold
  }
  auto reopened = open_backend(file);  // its catch-up reads the 300 back
  ASSERT_TRUE(reopened);
  EXPECT_EQ(reopened->folds_from_memory(), 0u);
  write_in_batches(*reopened, recent_calls(300, 15, "c3-"));
  fold(*reopened);
  write_in_batches(*reopened, recent_calls(300, 16, "c4-"));
  fold(*reopened);
  EXPECT_EQ(reopened->folds_from_memory(), 2u);
  reopened.reset();
  EXPECT_EQ(rollup_rows(file), recomputed_rollup_rows(file));
}

TEST(FoldFromMemory, RetentionFoldsTheSumsBeforeDeletingTheirRows) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  auto backend = open_backend(file);
  ASSERT_TRUE(backend);
  write_in_batches(*backend, recent_calls(100, 17, "r0-"));
  fold(*backend);
  const auto calls = recent_calls(400, 18, "r1-");
  write_in_batches(*backend, calls);
  // Deletes the calls of the oldest minute or so, after counting all of them.
  auto pruned = backend->prune_before(unix_now() - 540, 100'000, true);
  ASSERT_TRUE(pruned) << pruned.error().message;
  EXPECT_GT(*pruned, 0u);
  EXPECT_EQ(backend->folds_from_memory(), 1u);
  write_in_batches(*backend, recent_calls(100, 19, "r2-"));
  fold(*backend);
  EXPECT_EQ(backend->folds_from_memory(), 2u);
  backend.reset();
  auto db = sqlite::Database::open(file.string());
  ASSERT_TRUE(db);
  EXPECT_EQ(*db->query_int("SELECT SUM(calls) FROM rollups WHERE width = 86400"), 600);
  EXPECT_EQ(*db->query_int("SELECT SUM(calls) FROM rollups WHERE width = 1"), 600);
  EXPECT_EQ(*db->query_int("SELECT COUNT(*) FROM calls"), 600 - static_cast<std::int64_t>(*pruned));
}

}  // namespace
