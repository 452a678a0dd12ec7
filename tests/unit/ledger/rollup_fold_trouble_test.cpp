// When the roll-up fold cannot keep up (issue 16's review): a reader never waits on a
// stuck writer's thread, a fold that keeps failing neither refuses the ledger nor stops
// retention of the calls already folded, and it is reported (health, the fold's answer).
#include "common/clock.hpp"
#include "ledger/queued_ledger.hpp"
#include "ledger/sqlite/backend.hpp"
#include "ledger/sqlite/db.hpp"
#include "ledger_reference.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <future>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace turnout;
using namespace turnout::ledger;
using namespace turnout::ledger::test;
using namespace std::chrono_literals;

// Two of these in one roll-up bucket overflow its 64-bit cost sum: a fold that fails
// every time, as a corrupt or hand-edited row would make it.
CallRecord overflowing_call(std::string key, double timestamp) {
  CallRecord record = sample_record(std::move(key), timestamp, "gpt-4o");
  record.cost = pricing::Money{std::numeric_limits<std::int64_t>::max() / 2 + 1};
  record.baseline_cost.reset();
  return record;
}

void write(SqliteBackend& backend, const std::vector<CallRecord>& records, const std::string& prefix) {
  const Result<void> written = backend.write_batch(keyed(records, prefix));
  ASSERT_TRUE(written) << written.error().message;
}

// Leaves `file` with two committed calls no fold can count.
void store_unfoldable_calls(const fs::path& file) {
  auto backend = SqliteBackend::open(file.string());
  ASSERT_TRUE(backend) << backend.error().message;
  write(**backend, {overflowing_call("a", 1'700'000'000), overflowing_call("b", 1'700'000'001)}, "poison-");
  const auto folded = (*backend)->fold_rollups();
  ASSERT_FALSE(folded);
  EXPECT_NE(folded.error().message.find("range of a 64-bit"), std::string::npos) << folded.error().message;
}

TEST(RollupFoldTrouble, AFailingCatchUpDoesNotRefuseTheLedgerAndIsReported) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  store_unfoldable_calls(file);
  auto reopened = SqliteBackend::open(file.string());
  ASSERT_TRUE(reopened) << reopened.error().message;  // the calls are stored; only /stats lags
  reopened->reset();

  LedgerOptions options;
  options.retry_interval = 20ms;
  auto ledger = open_or_die("sqlite:" + file.string(), options);
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(eventually([&] { return !ledger->health().degraded.empty(); }));
  const LedgerHealth health = ledger->health();
  EXPECT_TRUE(health.healthy);  // new calls are still stored
  EXPECT_NE(health.degraded.find("roll-ups not folded"), std::string::npos) << health.degraded;
  EXPECT_NE(health.degraded.find("range of a 64-bit"), std::string::npos) << health.degraded;
  // A reader is told at once why its figures may be short, instead of waiting.
  const auto asked = std::chrono::steady_clock::now();
  const FoldOutcome outcome = wait_for_fold(*ledger, 10s);
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 2s);
  EXPECT_FALSE(outcome.complete);
  EXPECT_NE(outcome.problem.find("could not be folded"), std::string::npos) << outcome.problem;
  ASSERT_TRUE(append_and_wait(*ledger, sample_record("after", 1'700'000'100, "gpt-4o")));
}

TEST(RollupFoldTrouble, RetentionDeletesTheFoldedCallsWhileAFoldFails) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  auto backend = SqliteBackend::open(file.string());
  ASSERT_TRUE(backend) << backend.error().message;
  write(**backend, random_records(50, 3), "old-");  // timestamps long past
  ASSERT_TRUE((*backend)->fold_rollups());
  write(**backend, {overflowing_call("a", 1'000), overflowing_call("b", 1'001)}, "poison-");
  ASSERT_FALSE((*backend)->fold_rollups());

  const auto pruned = (*backend)->prune_before(unix_now(), 1'000, true);
  ASSERT_TRUE(pruned) << pruned.error().message;
  EXPECT_EQ(*pruned, 50U);
  // The calls not in the roll-ups are kept: deleting them would lose them from /stats for good.
  EXPECT_EQ(query_int(file, "SELECT COUNT(*) FROM calls"), 2);
}

TEST(RollupFoldTrouble, AFoldReopensAFileReplacedUnderTheWriter) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  const fs::path copy = dir.path() / "copy.db";
  auto backend = SqliteBackend::open(file.string());
  ASSERT_TRUE(backend) << backend.error().message;
  write(**backend, random_records(20, 4), "first-");
  ASSERT_TRUE((*backend)->fold_rollups());
  {
    auto db = sqlite::Database::open(file.string());
    ASSERT_TRUE(db) << db.error().message;
    ASSERT_TRUE(db->exec("VACUUM INTO '" + copy.string() + "'"));
  }
  write(**backend, random_records(5, 5), "second-");  // not folded yet
  // A restore: the copy takes the file's place (the old WAL goes with the old file).
  fs::remove(fs::path(file.string() + "-wal"));
  fs::remove(fs::path(file.string() + "-shm"));
  fs::rename(copy, file);

  const auto refused = (*backend)->fold_rollups();
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("moved or deleted"), std::string::npos) << refused.error().message;
  const auto folded = (*backend)->fold_rollups();  // on the file now at the path
  ASSERT_TRUE(folded) << folded.error().message;
  EXPECT_EQ(*folded, 0U);
}

// The writer stuck (here in a durability callback, as it would be in a busy timeout):
// asking for a fold returns at once, and the answer comes when the writer gets to it.
TEST(RollupFoldTrouble, AskingForAFoldNeverWaitsForTheWriter) {
  TempDir dir;
  LedgerOptions options;
  options.rollup_fold_interval = std::chrono::hours(1);
  options.rollup_fold_calls = 1'000'000;
  auto ledger = open_or_die("sqlite:" + (dir.path() / "ledger.db").string(), options);
  ASSERT_TRUE(ledger);
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  ledger->append(sample_record("stuck", 1'700'000'000, "gpt-4o"), [&entered, released](Result<void>) {
    entered.set_value();
    released.wait();
  });
  entered.get_future().wait();

  std::promise<FoldOutcome> answer;
  auto answered = answer.get_future();
  const auto asked = std::chrono::steady_clock::now();
  ledger->request_fold([&answer](FoldOutcome outcome) { answer.set_value(std::move(outcome)); });
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 500ms);
  EXPECT_EQ(answered.wait_for(300ms), std::future_status::timeout);

  release.set_value();
  ASSERT_EQ(answered.wait_for(10s), std::future_status::ready);
  const FoldOutcome outcome = answered.get();
  EXPECT_TRUE(outcome.complete) << outcome.problem;
  EXPECT_EQ(stats_or_die(*ledger).total_calls, 1U);
}

// Passes everything to a SQLite backend and counts the folds asked of it.
class FoldCountingBackend final : public Backend {
 public:
  explicit FoldCountingBackend(std::unique_ptr<SqliteBackend> inner) : inner_(std::move(inner)) {}
  std::shared_ptr<std::atomic<int>> folds() const { return folds_; }
  // Retention chunks that were to fold first (the fold inside prune_before).
  std::shared_ptr<std::atomic<int>> prune_folds() const { return prune_folds_; }

  Result<void> write_batch(std::span<const KeyedRecord> records) override { return inner_->write_batch(records); }
  Result<std::uint64_t> fold_rollups() override {
    ++*folds_;
    return inner_->fold_rollups();
  }
  bool folds_rollups_later() const override { return inner_->folds_rollups_later(); }
  Result<std::uint64_t> prune_before(double cutoff, std::uint64_t limit, bool fold_first) override {
    if (fold_first) ++*prune_folds_;
    return inner_->prune_before(cutoff, limit, fold_first);
  }
  Result<void> prune_second_rollups(double cutoff) override { return inner_->prune_second_rollups(cutoff); }
  Result<StatsReport> stats(const StatsQuery& query) override { return inner_->stats(query); }
  Result<SeriesReport> series(const SeriesQuery& query) override { return inner_->series(query); }
  Result<std::string> installation_secret(const std::string& candidate) override {
    return inner_->installation_secret(candidate);
  }

 private:
  std::unique_ptr<SqliteBackend> inner_;
  std::shared_ptr<std::atomic<int>> folds_ = std::make_shared<std::atomic<int>>(0);
  std::shared_ptr<std::atomic<int>> prune_folds_ = std::make_shared<std::atomic<int>>(0);
};

// A fold that fails every time is retried on its own clock, not on every write round once
// more than rollup_fold_calls calls wait: it would take the writer from the batches.
TEST(RollupFoldTrouble, AFoldThatKeepsFailingIsRetriedOnlyAfterItsRetryInterval) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  store_unfoldable_calls(file);
  auto backend = SqliteBackend::open(file.string());
  ASSERT_TRUE(backend) << backend.error().message;
  auto counting = std::make_unique<FoldCountingBackend>(std::move(*backend));
  const auto folds = counting->folds();
  LedgerOptions options;
  options.retry_interval = 1s;
  options.rollup_fold_calls = 16;
  const auto opened = std::chrono::steady_clock::now();
  auto ledger = QueuedLedger::open(std::move(counting), options);
  ASSERT_TRUE(ledger) << ledger.error().message;
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(append_and_wait(**ledger, sample_record("after-" + std::to_string(i), 1'700'000'100 + i, "gpt-4o")));
  }
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - opened);
  // The first round's fold, then at most one per retry_interval (doubling after each failure).
  EXPECT_LE(folds->load(), 2 + seconds.count()) << "in " << seconds.count() << " s";
  EXPECT_NE((*ledger)->health().degraded.find("roll-ups not folded"), std::string::npos);
}

// The catch-up at open fails with nothing stored yet: the first call stored afterwards
// does not bring the retry forward to rollup_fold_interval, and retention chunks do not
// fold meanwhile either.
TEST(RollupFoldTrouble, AFailedCatchUpKeepsItsRetryTimeWhenCallsArriveAndRetentionRuns) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  store_unfoldable_calls(file);
  auto backend = SqliteBackend::open(file.string());
  ASSERT_TRUE(backend) << backend.error().message;
  auto counting = std::make_unique<FoldCountingBackend>(std::move(*backend));
  const auto folds = counting->folds();
  const auto prune_folds = counting->prune_folds();
  LedgerOptions options;
  options.retry_interval = 5s;
  options.rollup_fold_interval = 10ms;
  options.retention = std::chrono::seconds(86'400);
  options.retention_check_interval = std::chrono::seconds(0);  // a retention chunk every round
  auto ledger = QueuedLedger::open(std::move(counting), options);
  ASSERT_TRUE(ledger) << ledger.error().message;
  ASSERT_TRUE(eventually([&] { return !(*ledger)->health().degraded.empty(); }));
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(append_and_wait(**ledger, sample_record("after-" + std::to_string(i), unix_now(), "gpt-4o")));
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(folds->load(), 1);  // the catch-up only; its retry is 5 s away
  EXPECT_EQ(prune_folds->load(), 0);
  EXPECT_NE((*ledger)->health().degraded.find("roll-ups not folded"), std::string::npos);
}

// A retention chunk told not to fold deletes only calls already folded.
TEST(RollupFoldTrouble, RetentionWithoutTheFoldLeavesUnfoldedCalls) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  auto backend = SqliteBackend::open(file.string());
  ASSERT_TRUE(backend) << backend.error().message;
  write(**backend, random_records(10, 6), "folded-");
  ASSERT_TRUE((*backend)->fold_rollups());
  write(**backend, random_records(4, 7), "waiting-");
  const auto pruned = (*backend)->prune_before(2'000'000'000, 1'000, false);
  ASSERT_TRUE(pruned) << pruned.error().message;
  EXPECT_EQ(*pruned, 10U);
  EXPECT_EQ(query_int(file, "SELECT COUNT(*) FROM calls"), 4);
  EXPECT_EQ(query_int(file, "SELECT folded_through_seq FROM rollup_watermark"), 10);
}

// A database that is not taking writes: a reader is answered at once with why.
TEST(RollupFoldTrouble, AnUnwritableDatabaseAnswersAtOnce) {
  TempDir dir;
  const fs::path folder = dir.path() / "data";
  fs::create_directories(folder);
  LedgerOptions options;
  options.retry_interval = 10s;  // no retry during the test
  auto ledger = open_or_die("sqlite:" + (folder / "ledger.db").string(), options);
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(append_and_wait(*ledger, sample_record("before", 1, "gpt-4o")));
  fs::remove_all(folder);
  ASSERT_FALSE(append_and_wait(*ledger, sample_record("during", 2, "gpt-4o")));

  const auto asked = std::chrono::steady_clock::now();
  const FoldOutcome outcome = wait_for_fold(*ledger, 10s);
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 2s);
  EXPECT_FALSE(outcome.complete);
  EXPECT_NE(outcome.problem.find("not taking writes"), std::string::npos) << outcome.problem;
  fs::create_directories(folder);
}

}  // namespace
