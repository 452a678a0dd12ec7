// The spool and the writer's use of it (issue 21, item 10): a batch the database does not
// take is fsync'd to the spool before its callers hear "durable"; the spool is drained
// into the database once it takes writes again, and at open when a crash left one
// behind; every record reaches the database once; when the spool cannot take a batch
// either, the callers are told and the ledger is unhealthy. The database here is a test
// double (FlakyBackend) that fails on demand: what is under test is the spool and the
// writer, not the storage engine. Also: the installation secret (item 9) is created once
// per database and read back on every open.
#include "ledger/ledger.hpp"
#include "ledger/queued_ledger.hpp"
#include "ledger/sqlite/backend.hpp"
#include "ledger/sqlite/db.hpp"
#include "ledger/spool/spool.hpp"
#include "legacy_spool.hpp"
#include "ledger_reference.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

namespace {

using namespace turnout;
using namespace turnout::ledger;
using namespace turnout::ledger::test;
using turnout::test::write_legacy_spool;
namespace fs = std::filesystem;

// What the test and its FlakyBackend share (the ledger owns the backend).
struct FlakyDatabase {
  std::atomic<bool> failing{false};
  std::atomic<int> write_calls{0};
  std::mutex mutex;
  std::vector<KeyedRecord> rows;  // in write order, each key once
  std::set<std::string> keys;
  std::string secret;

  std::vector<KeyedRecord> stored() {
    std::lock_guard lock(mutex);
    return rows;
  }
  std::size_t size() {
    std::lock_guard lock(mutex);
    return rows.size();
  }
};

// A Backend that stores records in memory and fails every write while `failing` is set;
// like the real ones, it skips a record whose key it already has.
class FlakyBackend final : public StubBackend {
 public:
  explicit FlakyBackend(std::shared_ptr<FlakyDatabase> db) : db_(std::move(db)) {}

  Result<void> write_batch(std::span<const KeyedRecord> records) override {
    db_->write_calls.fetch_add(1);
    if (db_->failing.load()) return make_error("the database is away");
    std::lock_guard lock(db_->mutex);
    for (const KeyedRecord& keyed : records) {
      if (db_->keys.insert(keyed.key).second) db_->rows.push_back(keyed);
    }
    return {};
  }
  Result<std::string> installation_secret(const std::string& candidate) override {
    std::lock_guard lock(db_->mutex);
    if (db_->secret.empty()) db_->secret = candidate;
    return Result<std::string>(boost::system::in_place_value, db_->secret);
  }

 private:
  std::shared_ptr<FlakyDatabase> db_;
};

LedgerOptions spool_options(const fs::path& spool) {
  LedgerOptions options;
  options.spool_path = spool.string();
  options.retry_interval = std::chrono::milliseconds(20);
  return options;
}

std::unique_ptr<QueuedLedger> open_flaky(const std::shared_ptr<FlakyDatabase>& db, const LedgerOptions& options) {
  auto opened = QueuedLedger::open(std::make_unique<FlakyBackend>(db), options);
  if (!opened) {
    ADD_FAILURE() << opened.error().message;
    return nullptr;
  }
  return std::move(*opened);
}

// Rows in a spool file, read straight from it.
std::int64_t spool_rows(const fs::path& spool) {
  auto db = sqlite::Database::open(spool.string(), sqlite::Database::OpenMode::existing_only);
  if (!db) return -1;
  return db->query_int("SELECT COUNT(*) FROM spooled").value();
}

std::vector<std::string> ids_of(const std::vector<KeyedRecord>& rows) {
  std::vector<std::string> ids;
  for (const auto& row : rows) ids.push_back(row.record.id);
  return ids;
}

std::vector<std::string> numbered_ids(const std::string& prefix, int count) {
  std::vector<std::string> ids;
  for (int i = 0; i < count; ++i) ids.push_back(prefix + std::to_string(i));
  return ids;
}

TEST(LedgerSpool, NotCreatedWhileTheDatabaseTakesWrites) {
  TempDir dir;
  const fs::path spool = dir.path() / "spool.db";
  auto db = std::make_shared<FlakyDatabase>();
  auto ledger = open_flaky(db, spool_options(spool));
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(append_and_wait(*ledger, sample_record("a", 1, "gpt-4o")));
  ledger->close();
  EXPECT_EQ(db->size(), 1U);
  EXPECT_FALSE(fs::exists(spool)) << "the spool file is created only when needed";
}

TEST(LedgerSpool, FailedWritesAreSpooledDurableThenDrainedOnceTheDatabaseIsBack) {
  TempDir dir;
  const fs::path spool = dir.path() / "spool.db";
  auto db = std::make_shared<FlakyDatabase>();
  auto ledger = open_flaky(db, spool_options(spool));
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(append_and_wait(*ledger, sample_record("before", 1, "gpt-4o")));

  db->failing = true;
  constexpr int kRecords = 50;
  for (const auto& id : numbered_ids("away-", kRecords)) {
    const auto durable = append_and_wait(*ledger, sample_record(id, 2, "gpt-4o"));
    ASSERT_TRUE(durable) << "a spooled record is durable: " << durable.error().message;
  }
  // On disk in the spool (fsync'd) before the callers heard "durable".
  EXPECT_EQ(spool_rows(spool), kRecords);
  const LedgerHealth spooling = ledger->health();
  EXPECT_TRUE(spooling.healthy) << "calls are still recorded durably: keep serving";
  EXPECT_EQ(spooling.spooled, static_cast<std::uint64_t>(kRecords));
  EXPECT_NE(spooling.degraded.find("the database is away"), std::string::npos) << spooling.degraded;
  EXPECT_EQ(db->size(), 1U);

  db->failing = false;
  ASSERT_TRUE(eventually([&] { return ledger->health().spooled == 0 && ledger->health().degraded.empty(); }))
      << ledger->health().degraded;
  ASSERT_TRUE(append_and_wait(*ledger, sample_record("after", 3, "gpt-4o")));
  ledger->close();

  std::vector<std::string> expected{"before"};
  for (const auto& id : numbered_ids("away-", kRecords)) expected.push_back(id);
  expected.push_back("after");
  EXPECT_EQ(ids_of(db->stored()), expected) << "each record once, in append order";
  EXPECT_EQ(spool_rows(spool), 0);
}

TEST(LedgerSpool, WhileSpoolingNewBatchesSkipTheDatabase) {
  TempDir dir;
  const fs::path spool = dir.path() / "spool.db";
  auto db = std::make_shared<FlakyDatabase>();
  LedgerOptions options = spool_options(spool);
  options.retry_interval = std::chrono::seconds(30);  // no drain attempt during the test
  auto ledger = open_flaky(db, options);
  ASSERT_TRUE(ledger);
  db->failing = true;
  ASSERT_TRUE(append_and_wait(*ledger, sample_record("first", 1, "gpt-4o")));
  const int calls = db->write_calls.load();
  for (const auto& id : numbered_ids("next-", 10)) ASSERT_TRUE(append_and_wait(*ledger, sample_record(id, 2, "gpt-4o")));
  EXPECT_EQ(db->write_calls.load(), calls) << "an absent database must not cost every call its connect attempt";
  EXPECT_EQ(spool_rows(spool), 11);
}

TEST(LedgerSpool, SpoolLeftBehindIsDrainedAtOpen) {
  TempDir dir;
  const fs::path spool = dir.path() / "spool.db";
  auto away = std::make_shared<FlakyDatabase>();
  away->failing = true;
  {
    auto ledger = open_flaky(away, spool_options(spool));
    ASSERT_TRUE(ledger);
    for (const auto& id : numbered_ids("r", 20)) ASSERT_TRUE(append_and_wait(*ledger, sample_record(id, 1, "gpt-4o")));
    ledger->close();  // the database is still away: the records stay in the spool
  }
  ASSERT_EQ(spool_rows(spool), 20);

  auto back = std::make_shared<FlakyDatabase>();
  auto ledger = open_flaky(back, spool_options(spool));
  ASSERT_TRUE(ledger);
  EXPECT_TRUE(eventually([&] { return back->size() == 20U; })) << back->size();
  EXPECT_TRUE(eventually([&] { return ledger->health().spooled == 0U; }));
  ledger->close();
  EXPECT_EQ(ids_of(back->stored()), numbered_ids("r", 20));
  EXPECT_EQ(spool_rows(spool), 0);
}

TEST(LedgerSpool, RecordsDrainedTwiceAreStoredOnce) {
  // A crash between the database commit and the spool delete: the next drain sends the
  // same records again, and their keys make that a no-op in the real storage engine.
  TempDir dir;
  const fs::path spool_file = dir.path() / "spool.db";
  const fs::path ledger_file = dir.path() / "ledger.db";
  std::vector<KeyedRecord> batch;
  for (int i = 0; i < 5; ++i)
    batch.push_back(KeyedRecord{"k-" + std::to_string(i), sample_record("r" + std::to_string(i), i, "gpt-4o")});
  {
    Spool spool(spool_file.string(), 100);
    ASSERT_TRUE(spool.store(batch));
  }
  auto database = SqliteBackend::open(ledger_file.string());
  ASSERT_TRUE(database) << database.error().message;
  for (int round = 0; round < 2; ++round) {
    Spool spool(spool_file.string(), 100);  // as after a restart
    ASSERT_TRUE(spool.open_existing());
    ASSERT_EQ(spool.size(), 5U);
    auto oldest = spool.oldest(100);
    ASSERT_TRUE(oldest);
    ASSERT_EQ(oldest->records.size(), 5U);
    ASSERT_TRUE((*database)->write_batch(oldest->records));
    // round 0: "crash" before remove_through
  }
  auto rows = sqlite::Database::open(ledger_file.string());
  EXPECT_EQ(rows->query_int("SELECT COUNT(*) FROM calls").value(), 5);
  EXPECT_EQ(rows->query_int("SELECT COUNT(DISTINCT record_key) FROM calls").value(), 5);
}

TEST(LedgerSpool, EveryFieldRoundTrips) {
  TempDir dir;
  CallRecord full;
  full.id = "req-\"quoted\"-ü";
  full.timestamp = 1717171717.123456;
  full.instance_id = "host-1";
  full.client_key_id = "key_0123456789ab";
  full.requested_model = "auto";
  full.model = "gpt-4o-mini";
  full.route = "fallback:gpt-3.5-turbo";
  full.counted_prompt_tokens = 1234;
  full.usage = {1300, 456, 1024};
  full.usage_reported = true;
  full.cost = pricing::Money{987654321012};
  full.baseline_cost = pricing::Money{(std::int64_t{1} << 53) + 7};
  full.latency_ms = 345.678;
  full.ttft_ms = 12.25;
  full.status = 200;
  full.error_type = "shutdown";
  full.attempts = 3;
  full.stream = true;
  full.hold_id = "0123456789abcdef0123456789abcdef";
  full.endpoint = "responses";
  full.count_estimated = true;
  full.count_partial = true;
  CallRecord sparse;
  sparse.id = "req-2";
  sparse.status = 503;

  Spool spool((dir.path() / "spool.db").string(), 10);
  ASSERT_TRUE(spool.store(std::vector<KeyedRecord>{{"k1", full}, {"k2", sparse}}));
  auto oldest = spool.oldest(10);
  ASSERT_TRUE(oldest);
  ASSERT_EQ(oldest->records.size(), 2U);
  EXPECT_EQ(oldest->records[0].key, "k1");
  EXPECT_EQ(oldest->records[1].key, "k2");
  expect_same_record(full, oldest->records[0].record);
  expect_same_record(sparse, oldest->records[1].record);
  // The governance hold travels with the record, so a spooled call still settles it.
  EXPECT_EQ(oldest->records[0].record.hold_id, full.hold_id);
  EXPECT_EQ(oldest->records[1].record.hold_id, "");
  ASSERT_TRUE(spool.remove_through(oldest->last_seq));
  EXPECT_EQ(spool.size(), 0U);
}

// A spool left behind by a turnout from before the endpoint column (format 1, chat calls
// only) still drains: its records come back as chat calls with exact counts.
TEST(LedgerSpool, AFormatOneSpoolIsUpgradedAndItsRecordsAreChatCalls) {
  TempDir dir;
  const fs::path file = dir.path() / "spool.db";
  ASSERT_TRUE(write_legacy_spool(file.string(), 1,
                                 "(1, 'k1', 'req-old', 1717171717.5, 'host-1', '', 'auto', 'gpt-4o-mini', 'tier:small', "
                                 "12, 12, 5, 0, 1, 42, NULL, 10.5, NULL, 200, '', 1, 0)"));
  Spool spool(file.string(), 10);
  ASSERT_TRUE(spool.open_existing());
  EXPECT_EQ(spool.size(), 1U);
  auto oldest = spool.oldest(10);
  ASSERT_TRUE(oldest);
  ASSERT_EQ(oldest->records.size(), 1U);
  const CallRecord& old = oldest->records[0].record;
  EXPECT_EQ(old.id, "req-old");
  EXPECT_EQ(old.usage.completion_tokens, 5U);
  EXPECT_EQ(old.endpoint, "chat");
  EXPECT_FALSE(old.count_estimated);
  EXPECT_FALSE(old.count_partial);
  EXPECT_EQ(old.hold_id, "");

  // And it takes new records with every field after the upgrade.
  CallRecord fresh = sample_record("req-new", 1717171800.0, "text-embedding-3-small");
  fresh.endpoint = "embeddings";
  fresh.hold_id = "abcd";
  ASSERT_TRUE(spool.store(std::vector<KeyedRecord>{{"k2", fresh}}));
  oldest = spool.oldest(10);
  ASSERT_TRUE(oldest);
  ASSERT_EQ(oldest->records.size(), 2U);
  expect_same_record(fresh, oldest->records[1].record);
  EXPECT_EQ(oldest->records[1].record.hold_id, "abcd");
}

// An older spool with a column the current format no longer has (one removed since): the
// rebuild copies the columns both shapes share, so the spool still opens and its records
// drain; copying every old column by name failed the open on the missing one.
TEST(LedgerSpool, AnOlderSpoolWithAColumnSinceRemovedStillOpensAndDrains) {
  TempDir dir;
  const fs::path file = dir.path() / "spool.db";
  ASSERT_TRUE(write_legacy_spool(file.string(), 2,
                                 "(3, 'k1', 'req-old', 1717171717.5, 'host-1', '', 'auto', 'gpt-4o-mini', 'medium', "
                                 "12, 12, 5, 0, 1, 42, NULL, 10.5, NULL, 200, '', 1, 0, 'chat', 0, 0, 'h1', 'gone')",
                                 "retired_column TEXT NOT NULL DEFAULT ''"));
  Spool spool(file.string(), 10);
  const auto opened = spool.open_existing();
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(spool.size(), 1U);
  auto oldest = spool.oldest(10);
  ASSERT_TRUE(oldest);
  ASSERT_EQ(oldest->records.size(), 1U);
  EXPECT_EQ(oldest->records[0].record.id, "req-old");
  EXPECT_EQ(oldest->records[0].record.usage.completion_tokens, 5U);
  EXPECT_EQ(oldest->records[0].record.hold_id, "h1");
}

TEST(LedgerSpool, AFileThatIsNotASpoolIsRefused) {
  TempDir dir;
  const fs::path ledger_file = dir.path() / "ledger.db";
  ASSERT_TRUE(open_or_die("sqlite:" + ledger_file.string()));
  Spool spool(ledger_file.string(), 10);
  const auto opened = spool.open_existing();
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().message.find("spool"), std::string::npos) << opened.error().message;

  auto db = std::make_shared<FlakyDatabase>();
  EXPECT_FALSE(QueuedLedger::open(std::make_unique<FlakyBackend>(db), spool_options(ledger_file)))
      << "a ledger must not start on a spool it cannot read";
}

TEST(LedgerSpool, WhenTheSpoolFailsTooCallersAreToldAndTheLedgerIsUnhealthy) {
  TempDir dir;
  const fs::path spool = dir.path() / "missing-dir" / "spool.db";  // cannot be created
  auto db = std::make_shared<FlakyDatabase>();
  auto ledger = open_flaky(db, spool_options(spool));
  ASSERT_TRUE(ledger);
  db->failing = true;
  const auto failed = append_and_wait(*ledger, sample_record("lost?", 1, "gpt-4o"));
  ASSERT_FALSE(failed) << "a record held only in memory must not be reported durable";
  EXPECT_NE(failed.error().message.find("the database is away"), std::string::npos) << failed.error().message;
  EXPECT_NE(failed.error().message.find("spool"), std::string::npos) << failed.error().message;
  const LedgerHealth sick = ledger->health();
  EXPECT_FALSE(sick.healthy);
  EXPECT_NE(sick.reason.find("1 records waiting"), std::string::npos) << sick.reason;

  db->failing = false;  // the record kept in memory is written once the database is back
  ASSERT_TRUE(eventually([&] { return ledger->health().healthy; })) << ledger->health().reason;
  ledger->close();
  EXPECT_EQ(ids_of(db->stored()), std::vector<std::string>{"lost?"});
}

TEST(LedgerSpool, AtItsBoundTheSpoolRefusesAndTheLedgerTurnsUnhealthyUntilDrained) {
  TempDir dir;
  const fs::path spool = dir.path() / "spool.db";
  auto db = std::make_shared<FlakyDatabase>();
  LedgerOptions options = spool_options(spool);
  options.spool_max_records = 5;
  auto ledger = open_flaky(db, options);
  ASSERT_TRUE(ledger);
  db->failing = true;
  for (const auto& id : numbered_ids("fits-", 5)) ASSERT_TRUE(append_and_wait(*ledger, sample_record(id, 1, "gpt-4o")));
  const LedgerHealth full = ledger->health();
  EXPECT_FALSE(full.healthy) << "a full spool must stop new calls before they reach the upstream";
  EXPECT_NE(full.reason.find("full"), std::string::npos) << full.reason;

  const auto refused = append_and_wait(*ledger, sample_record("beyond", 2, "gpt-4o"));
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("full"), std::string::npos) << refused.error().message;
  EXPECT_EQ(spool_rows(spool), 5) << "nothing is spooled past the bound";

  db->failing = false;
  ASSERT_TRUE(eventually([&] { return ledger->health().healthy && ledger->health().spooled == 0; }))
      << ledger->health().reason;
  ledger->close();
  auto ids = ids_of(db->stored());
  std::sort(ids.begin(), ids.end());
  auto expected = numbered_ids("fits-", 5);
  expected.push_back("beyond");  // kept in memory, written once the database was back
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(ids, expected);
}

TEST(LedgerSpool, WithoutASpoolAFailedWriteIsReportedAsNotDurable) {
  auto db = std::make_shared<FlakyDatabase>();
  LedgerOptions options;
  options.retry_interval = std::chrono::milliseconds(20);
  auto ledger = open_flaky(db, options);
  ASSERT_TRUE(ledger);
  db->failing = true;
  EXPECT_FALSE(append_and_wait(*ledger, sample_record("x", 1, "gpt-4o")));
  EXPECT_FALSE(ledger->health().healthy);
}

// ---------------------------------------------------------------------------------------
// The installation secret

TEST(InstallationSecret, CreatedOnceAndReadBackOnEveryOpen) {
  TempDir dir;
  const std::string url = "sqlite:" + (dir.path() / "ledger.db").string();
  std::string first;
  {
    auto ledger = open_or_die(url);
    ASSERT_TRUE(ledger);
    first = ledger->installation_secret();
  }
  EXPECT_EQ(first.size(), 64U);
  EXPECT_EQ(first.find_first_not_of("0123456789abcdef"), std::string::npos) << first;
  auto again = open_or_die(url);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->installation_secret(), first) << "ids must stay stable across restarts";

  auto other = open_or_die("sqlite:" + (dir.path() / "other.db").string());
  ASSERT_TRUE(other);
  EXPECT_NE(other->installation_secret(), first) << "each installation has its own secret";
}

}  // namespace
