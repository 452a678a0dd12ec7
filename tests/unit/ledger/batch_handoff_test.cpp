// The hand-off to the ledger writer (issue 16): append_batch gives the writer several
// records with one callback and one wake-up, and a batch is never split across two
// transactions (so its one outcome is true of each record in it); the SQLite write path
// runs statements prepared once per connection instead of parsing SQL text per batch.
#include "ledger/ledger.hpp"
#include "ledger/queued_ledger.hpp"
#include "ledger/sqlite/db.hpp"
#include "ledger_reference.hpp"

#include <sqlite3.h>

#include <gtest/gtest.h>

#include <future>
#include <mutex>

namespace {

using namespace turnout;
using namespace turnout::ledger;
using namespace turnout::ledger::test;

// Keeps the size of every write_batch call (one call = one transaction in the real backends).
struct BatchLog {
  std::mutex mutex;
  std::vector<std::size_t> sizes;
  std::vector<std::string> ids;
};

class BatchRecordingBackend final : public StubBackend {
 public:
  explicit BatchRecordingBackend(std::shared_ptr<BatchLog> log) : log_(std::move(log)) {}
  Result<void> write_batch(std::span<const KeyedRecord> records) override {
    std::lock_guard lock(log_->mutex);
    log_->sizes.push_back(records.size());
    for (const KeyedRecord& keyed : records) log_->ids.push_back(keyed.record.id);
    return {};
  }

 private:
  std::shared_ptr<BatchLog> log_;
};

std::vector<CallRecord> numbered_records(const std::string& prefix, int count) {
  std::vector<CallRecord> records;
  for (int i = 0; i < count; ++i) records.push_back(sample_record(prefix + std::to_string(i), 1, "gpt-4o"));
  return records;
}

TEST(BatchHandoff, OneCallbackForTheBatchAndNeverSplitAcrossTransactions) {
  auto log = std::make_shared<BatchLog>();
  LedgerOptions options;
  options.max_batch = 2;  // smaller than the batch: the round must still take all of it
  auto opened = QueuedLedger::open(std::make_unique<BatchRecordingBackend>(log), options);
  ASSERT_TRUE(opened) << opened.error().message;
  auto& ledger = **opened;

  std::promise<Result<void>> outcome;
  int callbacks = 0;
  ledger.append_batch(numbered_records("r", 5), [&](Result<void> r) {
    ++callbacks;
    outcome.set_value(std::move(r));
  });
  ASSERT_TRUE(outcome.get_future().get());
  ledger.close();

  EXPECT_EQ(callbacks, 1);
  std::lock_guard lock(log->mutex);
  ASSERT_EQ(log->sizes.size(), 1u) << "the five records in one transaction";
  EXPECT_EQ(log->sizes[0], 5u);
  EXPECT_EQ(log->ids, (std::vector<std::string>{"r0", "r1", "r2", "r3", "r4"}));
}

TEST(BatchHandoff, AnEmptyBatchIsReportedDurableAtOnce) {
  auto log = std::make_shared<BatchLog>();
  auto opened = QueuedLedger::open(std::make_unique<BatchRecordingBackend>(log), LedgerOptions{});
  ASSERT_TRUE(opened) << opened.error().message;
  bool told = false;
  (*opened)->append_batch({}, [&](Result<void> r) { told = bool(r); });
  EXPECT_TRUE(told);
}

TEST(BatchHandoff, ABatchAppendedAfterCloseIsRefused) {
  auto log = std::make_shared<BatchLog>();
  auto opened = QueuedLedger::open(std::make_unique<BatchRecordingBackend>(log), LedgerOptions{});
  ASSERT_TRUE(opened) << opened.error().message;
  (*opened)->close();
  std::optional<Result<void>> told;
  (*opened)->append_batch(numbered_records("late", 2), [&](Result<void> r) { told = std::move(r); });
  ASSERT_TRUE(told.has_value());
  EXPECT_FALSE(*told);
}

// Statements alive on the connection (prepared and not finalized).
int live_statements(sqlite::Database& db) {
  int count = 0;
  for (sqlite3_stmt* s = sqlite3_next_stmt(db.handle(), nullptr); s != nullptr; s = sqlite3_next_stmt(db.handle(), s)) {
    ++count;
  }
  return count;
}

TEST(SqliteStatementCache, TransactionsAndCachedStatementsPrepareOncePerConnection) {
  auto db = sqlite::Database::open(":memory:");
  ASSERT_TRUE(db) << db.error().message;
  ASSERT_TRUE(db->exec("CREATE TABLE t (v INTEGER)"));
  constexpr std::string_view kInsert = "INSERT INTO t (v) VALUES (?1)";
  for (int round = 0; round < 3; ++round) {
    auto transaction = sqlite::Transaction::begin(*db, "BEGIN IMMEDIATE");
    ASSERT_TRUE(transaction) << transaction.error().message;
    auto insert = db->cached(kInsert);
    ASSERT_TRUE(insert) << insert.error().message;
    (*insert)->bind(1, std::int64_t{round});
    ASSERT_TRUE((*insert)->step());
    ASSERT_TRUE(transaction->commit());
    // BEGIN IMMEDIATE, the insert, COMMIT: the same three statements every round.
    EXPECT_EQ(live_statements(*db), 3) << "round " << round;
  }
  auto first = db->cached(kInsert);
  auto second = db->cached(kInsert);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(*first, *second);
  EXPECT_EQ(db->query_int("SELECT count(*) FROM t").value(), 3);
}

TEST(SqliteStatementCache, ARolledBackTransactionLeavesTheConnectionUsable) {
  auto db = sqlite::Database::open(":memory:");
  ASSERT_TRUE(db) << db.error().message;
  ASSERT_TRUE(db->exec("CREATE TABLE t (v INTEGER)"));
  {
    auto transaction = sqlite::Transaction::begin(*db, "BEGIN IMMEDIATE");
    ASSERT_TRUE(transaction);
    ASSERT_TRUE(db->exec("INSERT INTO t (v) VALUES (1)"));
  }  // rolled back
  auto transaction = sqlite::Transaction::begin(*db, "BEGIN IMMEDIATE");
  ASSERT_TRUE(transaction) << transaction.error().message;
  ASSERT_TRUE(db->exec("INSERT INTO t (v) VALUES (2)"));
  ASSERT_TRUE(transaction->commit());
  EXPECT_EQ(db->query_int("SELECT sum(v) FROM t").value(), 2);
}

}  // namespace
