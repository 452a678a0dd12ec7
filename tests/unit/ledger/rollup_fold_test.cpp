// The SQLite roll-ups are folded from the calls table after the calls commit, behind a
// watermark (issue 16): whatever stops the writer between the two, every call is counted
// once, and a reader of /stats sees every call that was acknowledged.
#include "ledger/queued_ledger.hpp"
#include "ledger/record_scan.hpp"
#include "ledger/sqlite/call_row.hpp"
#include "ledger/sqlite/backend.hpp"
#include "ledger/sqlite/db.hpp"
#include "ledger/sqlite/schema.hpp"
#include "ledger_reference.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using namespace turnout;
using namespace turnout::ledger;
using namespace turnout::ledger::test;

void write_in_batches(SqliteBackend& backend, const std::vector<KeyedRecord>& records, std::size_t batch = 37) {
  for (std::size_t i = 0; i < records.size(); i += batch) {
    const auto part = std::span(records).subspan(i, std::min(batch, records.size() - i));
    const Result<void> written = backend.write_batch(part);
    ASSERT_TRUE(written) << written.error().message;
  }
}

// Calls counted in the day roll-ups, read from the file as it is (no catch-up).
std::int64_t day_rollup_calls(const fs::path& file) {
  return query_int(file, "SELECT COALESCE(SUM(calls), 0) FROM rollups WHERE width = 86400");
}

StatsReport backend_stats(SqliteBackend& backend, const StatsQuery& query) {
  auto report = backend.stats(query);
  EXPECT_TRUE(report) << report.error().message;
  return report ? *report : StatsReport{};
}

// SIGKILL between the calls commit and the roll-up write: the next open folds exactly
// the calls after the watermark.
TEST(RollupFold, CallsCommittedButNotFoldedAreCaughtUpAtOpen) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  const auto records = random_records(600, 7);
  {
    auto backend = SqliteBackend::open(file.string());
    ASSERT_TRUE(backend) << backend.error().message;
    write_in_batches(**backend, keyed(std::vector(records.begin(), records.begin() + 200), "a"));
    ASSERT_TRUE((*backend)->fold_rollups());
    write_in_batches(**backend, keyed(std::vector(records.begin() + 200, records.end()), "b"));
    // dropped here without a fold, as a killed process would leave it
  }
  EXPECT_EQ(day_rollup_calls(file), 200);
  EXPECT_EQ(query_int(file, "SELECT COUNT(*) FROM calls"), 600);
  auto reopened = SqliteBackend::open(file.string());
  ASSERT_TRUE(reopened) << reopened.error().message;
  EXPECT_EQ(day_rollup_calls(file), 600);
  const StatsQuery query{};
  expect_same_stats(brute_force_stats(records, query), backend_stats(**reopened, query));
}

// A fold with nothing new, a re-sent batch (keys already stored) and a second process's
// fold count nothing twice.
TEST(RollupFold, RepeatedFoldsAndResentBatchesCountOnce) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  const auto records = random_records(300, 11);
  const auto batch = keyed(records, "k");
  auto first = SqliteBackend::open(file.string());
  ASSERT_TRUE(first) << first.error().message;
  auto second = SqliteBackend::open(file.string());
  ASSERT_TRUE(second) << second.error().message;
  write_in_batches(**first, batch);
  auto folded = (*first)->fold_rollups();
  ASSERT_TRUE(folded) << folded.error().message;
  EXPECT_EQ(*folded, 300u);
  write_in_batches(**first, batch);  // every key already stored: nothing new
  auto again = (*first)->fold_rollups();
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0u);
  auto other = (*second)->fold_rollups();
  ASSERT_TRUE(other);
  EXPECT_EQ(*other, 0u);
  const StatsQuery query{};
  expect_same_stats(brute_force_stats(records, query), backend_stats(**first, query));
}

// Retention can delete every raw row, the newest included; SQLite then hands out seqs
// below the old watermark again, and those calls must still be folded.
TEST(RollupFold, CallsStoredAfterRetentionEmptiedTheTableAreFolded) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  const auto old_records = random_records(50, 3);
  auto backend = SqliteBackend::open(file.string());
  ASSERT_TRUE(backend) << backend.error().message;
  write_in_batches(**backend, keyed(old_records, "old"));
  auto pruned = (*backend)->prune_before(2'000'000'000, 1'000, true);  // everything, folded first
  ASSERT_TRUE(pruned) << pruned.error().message;
  EXPECT_EQ(*pruned, 50u);
  EXPECT_EQ(day_rollup_calls(file), 50);
  const auto new_records = random_records(20, 4);
  write_in_batches(**backend, keyed(new_records, "new"));
  ASSERT_TRUE((*backend)->fold_rollups());
  EXPECT_EQ(day_rollup_calls(file), 70);
}

// The same by hand: deleting the newest rows outside the writer lowers the watermark too.
TEST(RollupFold, CallsStoredAfterTheNewestRowsWereDeletedByHandAreFolded) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  auto backend = SqliteBackend::open(file.string());
  ASSERT_TRUE(backend) << backend.error().message;
  write_in_batches(**backend, keyed(random_records(30, 8), "old"));
  ASSERT_TRUE((*backend)->fold_rollups());
  {
    auto db = sqlite::Database::open(file.string());
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec("DELETE FROM calls WHERE seq > 10"));
  }
  write_in_batches(**backend, keyed(random_records(5, 9), "new"));  // seqs 11-15 again
  ASSERT_TRUE((*backend)->fold_rollups());
  EXPECT_EQ(day_rollup_calls(file), 35);
}

// Through QueuedLedger with a fold interval far longer than the test: a stats read asks
// the writer for a fold, and close folds what is left.
TEST(RollupFold, StatsSeeEveryAcknowledgedCallAndCloseFolds) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  LedgerOptions options;
  options.rollup_fold_interval = std::chrono::hours(1);
  options.rollup_fold_calls = 1'000'000;
  const auto records = random_records(120, 5);
  {
    auto ledger = open_or_die("sqlite:" + file.string(), options);
    ASSERT_TRUE(ledger);
    std::vector<CallRecord> stored;
    for (std::size_t i = 0; i < 60; ++i) {
      ASSERT_TRUE(append_and_wait(*ledger, records[i]));
      stored.push_back(records[i]);
    }
    const StatsQuery query{};
    expect_same_stats(brute_force_stats(stored, query), stats_or_die(*ledger, query));
    for (std::size_t i = 60; i < records.size(); ++i) {
      ASSERT_TRUE(append_and_wait(*ledger, records[i]));
    }
    ledger->close();
  }
  EXPECT_EQ(day_rollup_calls(file), 120);  // folded at close, not by a catch-up
  EXPECT_EQ(query_int(file, "SELECT folded_through_seq FROM rollup_watermark"),
            query_int(file, "SELECT MAX(seq) FROM calls"));
}

// A ledger of the previous schema version: its roll-ups already count every stored call,
// so the upgrade starts the watermark at the newest seq and the next open adds nothing.
TEST(RollupFold, UpgradeStartsTheWatermarkAtTheNewestCall) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  const auto migrations = sqlite::ledger_migrations();
  std::size_t step = 0;
  while (step < migrations.size() && migrations[step].description != "roll-up watermark") ++step;
  ASSERT_LT(step, migrations.size());
  {
    auto db = sqlite::Database::open(file.string(), sqlite::Database::OpenMode::create_if_missing);
    ASSERT_TRUE(db) << db.error().message;
    ASSERT_TRUE(sqlite::migrate(*db, migrations.first(step)));
    // Two calls, counted in the roll-ups as a writer of that version stored them.
    ASSERT_TRUE(db->exec(
        "INSERT INTO calls (record_key, id, timestamp, instance_id, client_key_id, requested_model, model, route, "
        "counted_prompt_tokens, prompt_tokens, completion_tokens, cached_tokens, usage_reported, latency_ms, status, "
        "error_type, attempts, stream) VALUES "
        "('k1', 'r1', 1700000000, 'i', '', 'auto', 'm', 'simple', 1, 1, 1, 0, 1, 5, 200, '', 1, 0), "
        "('k2', 'r2', 1700000001, 'i', '', 'auto', 'm', 'simple', 1, 1, 1, 0, 1, 5, 200, '', 1, 0);"
        "INSERT INTO rollups (width, bucket, instance_id, model, route, calls, errors, prompt_tokens, "
        "completion_tokens, priced_calls, priced_cost_pico, latency_sum, baseline_cost_pico, savings_pico) VALUES "
        "(86400, 1699920000, 'i', 'm', 'simple', 2, 0, 2, 2, 0, 0, 10, 0, 0)"));
  }
  auto backend = SqliteBackend::open(file.string());
  ASSERT_TRUE(backend) << backend.error().message;
  EXPECT_EQ(query_int(file, "SELECT folded_through_seq FROM rollup_watermark"), 2);
  EXPECT_EQ(day_rollup_calls(file), 2);
}

// A turnout of the previous version keeps writing to the file after a newer one migrated
// it (a rolling upgrade): it writes each call's roll-ups in its own batch, so the fold must
// not count its calls again, and still counts the new writer's.
TEST(RollupFold, CallsAnOlderWriterStoresAfterTheUpgradeAreNotCountedTwice) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  const auto migrations = sqlite::ledger_migrations();
  std::size_t step = 0;
  while (step < migrations.size() && migrations[step].description != "roll-up watermark") ++step;
  ASSERT_LT(step, migrations.size());
  auto old_writer = sqlite::Database::open(file.string(), sqlite::Database::OpenMode::create_if_missing);
  ASSERT_TRUE(old_writer) << old_writer.error().message;
  ASSERT_TRUE(sqlite::migrate(*old_writer, migrations.first(step)));
  const auto store_the_old_way = [&](const std::string& key, int second) {
    const Result<void> stored = old_writer->exec(
        "BEGIN IMMEDIATE;"
        "INSERT INTO calls (record_key, id, timestamp, instance_id, client_key_id, requested_model, model, route, "
        "counted_prompt_tokens, prompt_tokens, completion_tokens, cached_tokens, usage_reported, latency_ms, status, "
        "error_type, attempts, stream) VALUES ('" +
        key + "', 'r', " + std::to_string(1'700'000'000 + second) +
        ", 'i', '', 'auto', 'm', 'simple', 1, 1, 1, 0, 1, 5, 200, '', 1, 0);"
        "INSERT INTO rollups (width, bucket, instance_id, model, route, calls, errors, prompt_tokens, "
        "completion_tokens, priced_calls, priced_cost_pico, latency_sum, baseline_cost_pico, savings_pico) VALUES "
        "(86400, 1699920000, 'i', 'm', 'simple', 1, 0, 1, 1, 0, 0, 5, 0, 0) "
        "ON CONFLICT DO UPDATE SET calls = calls + 1, prompt_tokens = prompt_tokens + 1, "
        "completion_tokens = completion_tokens + 1, latency_sum = latency_sum + 5;"
        "COMMIT;");
    ASSERT_TRUE(stored) << stored.error().message;
  };
  store_the_old_way("old-1", 0);

  auto backend = SqliteBackend::open(file.string());  // migrates the file under the old writer
  ASSERT_TRUE(backend) << backend.error().message;
  store_the_old_way("old-2", 1);
  write_in_batches(**backend, keyed(random_records(5, 11), "new-"));
  store_the_old_way("old-3", 2);
  const auto folded = (*backend)->fold_rollups();
  ASSERT_TRUE(folded) << folded.error().message;
  EXPECT_EQ(*folded, 5U);  // only the new writer's calls
  EXPECT_EQ(day_rollup_calls(file), query_int(file, "SELECT COUNT(*) FROM calls"));
  EXPECT_EQ(day_rollup_calls(file), 8);
}

// The release that folded before this column existed (the watermark without
// counted_by_fold) keeps writing to the file after a newer one migrated it: its insert
// does not name the column and it writes no roll-ups, leaving the call to a fold, so its
// calls must take a DEFAULT the fold counts.
TEST(RollupFold, CallsAFoldingWriterWithoutTheColumnStoresAfterTheUpgradeAreFolded) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  const auto migrations = sqlite::ledger_migrations();
  std::size_t step = 0;
  while (step < migrations.size() && migrations[step].description != "calls counted by the fold") ++step;
  ASSERT_LT(step, migrations.size());
  auto old_writer = sqlite::Database::open(file.string(), sqlite::Database::OpenMode::create_if_missing);
  ASSERT_TRUE(old_writer) << old_writer.error().message;
  ASSERT_TRUE(sqlite::migrate(*old_writer, migrations.first(step)));
  const auto store_the_old_way = [&](const std::string& key, int second) {
    const Result<void> stored = old_writer->exec(
        "INSERT INTO calls (record_key, id, timestamp, instance_id, client_key_id, requested_model, model, route, "
        "counted_prompt_tokens, prompt_tokens, completion_tokens, cached_tokens, usage_reported, latency_ms, status, "
        "error_type, attempts, stream) VALUES ('" +
        key + "', 'r', " + std::to_string(1'700'000'000 + second) +
        ", 'i', '', 'auto', 'm', 'simple', 1, 1, 1, 0, 1, 5, 200, '', 1, 0)");
    ASSERT_TRUE(stored) << stored.error().message;
  };
  store_the_old_way("old-1", 0);

  auto backend = SqliteBackend::open(file.string());  // migrates the file under the old writer
  ASSERT_TRUE(backend) << backend.error().message;
  store_the_old_way("old-2", 1);
  write_in_batches(**backend, keyed(random_records(5, 11), "new-"));
  store_the_old_way("old-3", 2);
  const auto folded = (*backend)->fold_rollups();
  ASSERT_TRUE(folded) << folded.error().message;
  EXPECT_EQ(*folded, 7U);  // the old writer's two since the open, and the new writer's five
  EXPECT_EQ(day_rollup_calls(file), query_int(file, "SELECT COUNT(*) FROM calls"));
  EXPECT_EQ(day_rollup_calls(file), 8);
}

// The fold reads rows back through record_scan.cpp's column list: it must be the call-row
// list (what the insert writes) less the key, or a new column reaches the fold as its default.
TEST(RollupFold, TheFoldReadsEveryColumnTheInsertWrites) {
  EXPECT_EQ("record_key, " + std::string(record_scan_columns()), sqlite::call_row_columns());
}

// A rebuild of `calls` (by hand, or a migration that forgot it) drops the watermark's
// trigger: the next open re-creates it, so deleting the newest rows still lowers the
// watermark and calls stored after it are folded.
TEST(RollupFold, AMissingWatermarkTriggerIsRecreatedAtOpen) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  {
    auto backend = SqliteBackend::open(file.string());
    ASSERT_TRUE(backend) << backend.error().message;
    write_in_batches(**backend, keyed(random_records(10, 21), "a"));
    ASSERT_TRUE((*backend)->fold_rollups());
  }
  {
    auto db = sqlite::Database::open(file.string());
    ASSERT_TRUE(db) << db.error().message;
    ASSERT_TRUE(db->exec("DROP TRIGGER calls_watermark_row_deleted"));
    ASSERT_TRUE(db->exec("DELETE FROM calls WHERE seq > 7"));  // the watermark stays at 10
  }
  auto backend = SqliteBackend::open(file.string());
  ASSERT_TRUE(backend) << backend.error().message;
  EXPECT_EQ(query_int(file, "SELECT folded_through_seq FROM rollup_watermark"), 7);
  ASSERT_TRUE(query_int(file, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'calls_watermark_row_deleted'") == 1);
  write_in_batches(**backend, keyed(random_records(4, 22), "b"));  // seqs 8..11
  ASSERT_TRUE((*backend)->fold_rollups());
  EXPECT_EQ(day_rollup_calls(file), 14);  // the 10 folded first, and these 4
}

// A file the folding version before that column wrote: its calls above the watermark were
// left to the fold, and the upgrade keeps them there.
TEST(RollupFold, CallsAwaitingTheFoldBeforeTheColumnWasAddedAreFolded) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  const auto migrations = sqlite::ledger_migrations();
  std::size_t step = 0;
  while (step < migrations.size() && migrations[step].description != "calls counted by the fold") ++step;
  ASSERT_LT(step, migrations.size());
  {
    auto db = sqlite::Database::open(file.string(), sqlite::Database::OpenMode::create_if_missing);
    ASSERT_TRUE(db) << db.error().message;
    ASSERT_TRUE(sqlite::migrate(*db, migrations.first(step)));
    ASSERT_TRUE(db->exec(
        "INSERT INTO calls (record_key, id, timestamp, instance_id, client_key_id, requested_model, model, route, "
        "counted_prompt_tokens, prompt_tokens, completion_tokens, cached_tokens, usage_reported, latency_ms, status, "
        "error_type, attempts, stream) VALUES "
        "('k1', 'r1', 1700000000, 'i', '', 'auto', 'm', 'simple', 1, 1, 1, 0, 1, 5, 200, '', 1, 0), "
        "('k2', 'r2', 1700000001, 'i', '', 'auto', 'm', 'simple', 1, 1, 1, 0, 1, 5, 200, '', 1, 0)"));
  }
  auto backend = SqliteBackend::open(file.string());  // the catch-up folds them
  ASSERT_TRUE(backend) << backend.error().message;
  EXPECT_EQ(day_rollup_calls(file), 2);
}

}  // namespace
