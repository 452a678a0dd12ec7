// The SQLite writer keeps the latency histogram rows it last wrote in memory instead of
// reading each back per batch (issue 16). These tests hold it to what the rows on disk
// say: every batch's cells are there, whoever else wrote the same rows in between.
#include "ledger/latency_histogram.hpp"
#include "ledger/rollup.hpp"
#include "ledger/sqlite/backend.hpp"
#include "ledger/sqlite/db.hpp"
#include "ledger/sqlite/rollups.hpp"
#include "ledger_reference.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using namespace turnout;
using namespace turnout::ledger;
using namespace turnout::ledger::test;

constexpr double kTimestamp = 1'700'000'000;

void write_one(SqliteBackend& backend, const std::string& key, double latency_ms) {
  KeyedRecord keyed{key, sample_record(key, kTimestamp, "gpt-4o")};
  keyed.record.latency_ms = latency_ms;
  const Result<void> written = backend.write_batch(std::span(&keyed, 1));
  ASSERT_TRUE(written) << written.error().message;
  // The roll-ups are folded after the commit; one fold per call keeps the cache merging
  // into rows it wrote before.
  const auto folded = backend.fold_rollups();
  ASSERT_TRUE(folded) << folded.error().message;
}

// The calls counted in the day-wide histogram row of the model, read from the file.
std::uint64_t day_histogram_count(const fs::path& file) {
  auto db = sqlite::Database::open(file.string());
  EXPECT_TRUE(db) << db.error().message;
  auto text = db->query_text("SELECT cells FROM latency_histograms WHERE width = 86400 AND model = 'gpt-4o'");
  EXPECT_TRUE(text) << text.error().message;
  LatencyCells cells;
  EXPECT_TRUE(decode_latency_cells(*text, cells));
  std::uint64_t count = 0;
  for (const auto& [bucket, cell] : cells) count += cell.count;
  return count;
}

TEST(HistogramRowCache, MergesIntoTheNewestBucketPerSeriesAndEncodesLikeTheCodec) {
  sqlite::HistogramRowCache cache;
  const HistogramKey minute{60, 120, "i", "m"};
  LatencyCells stored{{3, LatencyCell{2, 1.0, 1.5}}, {40, LatencyCell{1, 0.125, 0.125}}};
  cache.store(minute, stored);
  const LatencyCells added{{3, LatencyCell{1, 0.75, 1.25}}, {7, LatencyCell{1, 2.5, 2.5}}};
  std::string text;
  EXPECT_FALSE(cache.merge(HistogramKey{60, 180, "i", "m"}, added, text));  // another bucket: not known
  EXPECT_FALSE(cache.merge(HistogramKey{60, 120, "i", "other"}, added, text));
  ASSERT_TRUE(cache.merge(minute, added, text));
  for (const auto& [bucket, cell] : added) merge_latency_cell(stored, bucket, cell);
  EXPECT_EQ(text, encode_latency_cells(stored));
  EXPECT_EQ(text, "3,3,0.75,1.5 7,1,2.5,2.5 40,1,0.125,0.125");
  cache.store(HistogramKey{60, 180, "i", "m"}, LatencyCells{});  // the next minute replaces it
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_FALSE(cache.merge(minute, added, text));
}

TEST(HistogramRowCache, ConsecutiveBatchesAddUp) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  auto backend = SqliteBackend::open(file.string());
  ASSERT_TRUE(backend) << backend.error().message;
  for (int i = 0; i < 5; ++i) write_one(**backend, "k" + std::to_string(i), 10.0 * (i + 1));
  EXPECT_EQ(day_histogram_count(file), 5u);
}

// Two processes on one file with the same instance id update the same rows: a writer
// must not overwrite the other's cells with what it remembers.
TEST(HistogramRowCache, AnotherWritersCommitIsReadBack) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  auto first = SqliteBackend::open(file.string());
  ASSERT_TRUE(first) << first.error().message;
  auto second = SqliteBackend::open(file.string());
  ASSERT_TRUE(second) << second.error().message;
  write_one(**first, "a1", 10);
  write_one(**second, "b1", 20);
  write_one(**first, "a2", 30);
  EXPECT_EQ(day_histogram_count(file), 3u);
  write_one(**second, "b2", 40);
  EXPECT_EQ(day_histogram_count(file), 4u);
}

// Pruning the second rows deletes histogram rows; the writer must not resurrect them
// from memory as if they were still there.
TEST(HistogramRowCache, PruningForgetsTheDeletedRows) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  auto backend = SqliteBackend::open(file.string());
  ASSERT_TRUE(backend) << backend.error().message;
  const double now = unix_now();
  KeyedRecord keyed{"p1", sample_record("p1", now, "gpt-4o")};
  ASSERT_TRUE((*backend)->write_batch(std::span(&keyed, 1)));
  ASSERT_TRUE((*backend)->fold_rollups());
  ASSERT_TRUE((*backend)->prune_second_rollups(now + 10));  // every second row goes
  keyed = KeyedRecord{"p2", sample_record("p2", now, "gpt-4o")};
  ASSERT_TRUE((*backend)->write_batch(std::span(&keyed, 1)));
  ASSERT_TRUE((*backend)->fold_rollups());
  auto db = sqlite::Database::open(file.string());
  ASSERT_TRUE(db);
  auto text = db->query_text("SELECT cells FROM latency_histograms WHERE width = 1");
  ASSERT_TRUE(text) << text.error().message;
  LatencyCells cells;
  ASSERT_TRUE(decode_latency_cells(*text, cells));
  ASSERT_EQ(cells.size(), 1u);
  EXPECT_EQ(cells.begin()->second.count, 1u);  // only the record written after the prune
}

}  // namespace
