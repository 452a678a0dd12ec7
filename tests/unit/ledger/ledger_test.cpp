// Ledger tests on real SQLite files (PostgreSQL: ledger_pg_test.cpp): storage round trip, schema migrations, group commit
// under concurrency, draining on close, /stats figures checked against a brute-force
// computation over the same records, the JSON body, and recovery from an unwritable
// database.
#include "ledger/backend.hpp"
#include "ledger/ledger.hpp"
#include "ledger/ledger_url.hpp"
#include "ledger/rollup.hpp"
#include "ledger/sqlite/backend.hpp"
#include "ledger/sqlite/call_row.hpp"
#include "ledger/sqlite/db.hpp"
#include "ledger/sqlite/schema.hpp"
#include "ledger_reference.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <limits>
#include <random>
#include <thread>

namespace {

using namespace turnout;
using namespace turnout::ledger;
using namespace turnout::ledger::test;
using pricing::Money;
namespace fs = std::filesystem;
namespace json = boost::json;

std::string sqlite_url(const fs::path& file) { return "sqlite:" + file.string(); }

// Every stored row, in write order, read straight from the file with the schema's
// column names (the contract other tools reading the ledger rely on).
std::vector<CallRecord> read_rows(const fs::path& file) {
  auto db = sqlite::Database::open(file.string());
  EXPECT_TRUE(db) << db.error().message;
  auto rows = db->prepare(
      "SELECT id, timestamp, instance_id, client_key_id, requested_model, model, route, counted_prompt_tokens, "
      "prompt_tokens, completion_tokens, cached_tokens, usage_reported, cost_pico, baseline_cost_pico, latency_ms, "
      "ttft_ms, status, error_type, attempts, stream FROM calls ORDER BY seq");
  EXPECT_TRUE(rows) << rows.error().message;
  std::vector<CallRecord> records;
  while (rows->step().value()) {
    CallRecord r;
    r.id = rows->column_text(0);
    r.timestamp = rows->column_double(1);
    r.instance_id = rows->column_text(2);
    r.client_key_id = rows->column_text(3);
    r.requested_model = rows->column_text(4);
    r.model = rows->column_text(5);
    r.route = rows->column_text(6);
    if (auto counted = rows->column_optional_int(7)) r.counted_prompt_tokens = static_cast<std::uint64_t>(*counted);
    r.usage.prompt_tokens = static_cast<std::uint64_t>(rows->column_int(8));
    r.usage.completion_tokens = static_cast<std::uint64_t>(rows->column_int(9));
    r.usage.cached_tokens = static_cast<std::uint64_t>(rows->column_int(10));
    r.usage_reported = rows->column_int(11) != 0;
    if (auto pico = rows->column_optional_int(12)) r.cost = Money{*pico};
    if (auto pico = rows->column_optional_int(13)) r.baseline_cost = Money{*pico};
    r.latency_ms = rows->column_double(14);
    r.ttft_ms = rows->column_optional_double(15);
    r.status = static_cast<int>(rows->column_int(16));
    r.error_type = rows->column_text(17);
    r.attempts = static_cast<int>(rows->column_int(18));
    r.stream = rows->column_int(19) != 0;
    records.push_back(std::move(r));
  }
  return records;
}


// ---------------------------------------------------------------------------------------
// Storage

TEST(LedgerStorage, EveryFieldRoundTripsThroughTheFile) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";

  CallRecord full;
  full.id = "req-\"quoted\"-ü-😀";
  full.timestamp = 1717171717.123456;
  full.instance_id = "host-1:8000";
  full.client_key_id = "team-a";
  full.requested_model = "auto";
  full.model = "gpt-4o-mini";
  full.route = "fallback:gpt-3.5-turbo";
  full.counted_prompt_tokens = 1234;
  full.usage = {1300, 456, 1024};
  full.usage_reported = true;
  full.cost = Money{987654321012};
  full.baseline_cost = Money{(std::int64_t{1} << 53) + 7};  // beyond a double's exact range
  full.latency_ms = 345.678;
  full.ttft_ms = 12.25;
  full.status = 499;
  full.error_type = "client_closed";
  full.attempts = 3;
  full.stream = true;

  CallRecord sparse;  // every optional unset, every string empty
  sparse.id = "req-2";
  sparse.timestamp = 1717171718;
  sparse.usage = {(std::uint64_t{1} << 40), 0, 0};
  sparse.status = 502;

  {
    auto ledger = open_or_die(sqlite_url(file));
    ASSERT_TRUE(ledger);
    ASSERT_TRUE(append_and_wait(*ledger, full));
    ASSERT_TRUE(append_and_wait(*ledger, sparse));
  }
  const auto rows = read_rows(file);
  ASSERT_EQ(rows.size(), 2U);
  expect_same_record(full, rows[0]);
  expect_same_record(sparse, rows[1]);
}

TEST(LedgerStorage, RecordsSurviveReopening) {
  TempDir dir;
  const std::string url = sqlite_url(dir.path() / "ledger.db");
  {
    auto ledger = open_or_die(url);
    ASSERT_TRUE(ledger);
    ASSERT_TRUE(append_and_wait(*ledger, sample_record("a", 1, "gpt-4o")));
  }
  auto reopened = open_or_die(url);
  ASSERT_TRUE(reopened);
  ASSERT_TRUE(append_and_wait(*reopened, sample_record("b", 2, "gpt-4o")));
  EXPECT_EQ(stats_or_die(*reopened).total_calls, 2U);
}

TEST(LedgerStorage, ReusedClientRequestIdsKeepEveryCall) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  {
    auto ledger = open_or_die(sqlite_url(file));
    ASSERT_TRUE(ledger);
    ASSERT_TRUE(append_and_wait(*ledger, sample_record("same-id", 1, "gpt-4o")));
    ASSERT_TRUE(append_and_wait(*ledger, sample_record("same-id", 2, "gpt-4o-mini")));
    EXPECT_EQ(stats_or_die(*ledger).total_calls, 2U);
  }
  const auto rows = read_rows(file);
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[0].model, "gpt-4o");
  EXPECT_EQ(rows[1].model, "gpt-4o-mini");
}

TEST(LedgerStorage, FileUsesWriteAheadLogging) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  auto ledger = open_or_die(sqlite_url(file));
  ASSERT_TRUE(ledger);
  auto db = sqlite::Database::open(file.string());
  ASSERT_TRUE(db);
  EXPECT_EQ(db->query_text("PRAGMA journal_mode").value(), "wal");
}

TEST(LedgerStorage, RelativePathIsResolvedFromTheWorkingDirectory) {
  TempDir dir;
  const fs::path previous = fs::current_path();
  fs::current_path(dir.path());
  auto ledger = open_ledger("sqlite:relative.db");
  fs::current_path(previous);
  ASSERT_TRUE(ledger) << ledger.error().message;
  EXPECT_TRUE(fs::exists(dir.path() / "relative.db"));
}

// ---------------------------------------------------------------------------------------
// URLs

TEST(LedgerUrl, UnreachablePostgresqlIsNamedWithoutCredentials) {
  // Port 1 on loopback: refused at once, no server needed.
  auto ledger = open_ledger("postgresql://bob:s3cret@127.0.0.1:1/turnout?password=hunter2");
  ASSERT_FALSE(ledger);
  const std::string& message = ledger.error().message;
  EXPECT_NE(message.find("cannot connect"), std::string::npos) << message;
  EXPECT_NE(message.find("postgresql://127.0.0.1:1/turnout"), std::string::npos) << message;
  EXPECT_EQ(message.find("s3cret"), std::string::npos) << message;
  EXPECT_EQ(message.find("bob"), std::string::npos) << message;
  EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
}

TEST(LedgerUrl, UnknownSchemeIsNamedWithoutTheRestOfTheUrl) {
  auto ledger = open_ledger("mysql://root:pw123@localhost/db");
  ASSERT_FALSE(ledger);
  EXPECT_NE(ledger.error().message.find("'mysql'"), std::string::npos) << ledger.error().message;
  EXPECT_EQ(ledger.error().message.find("pw123"), std::string::npos) << ledger.error().message;
}

TEST(LedgerUrl, MissingPathOrSchemeIsAnError) {
  EXPECT_FALSE(open_ledger("sqlite:"));
  EXPECT_FALSE(open_ledger("turnout.db"));
  EXPECT_FALSE(open_ledger(""));
}

TEST(LedgerUrl, UnopenablePathIsNamedInTheError) {
  auto ledger = open_ledger("sqlite:/nonexistent-turnout-dir/ledger.db");
  ASSERT_FALSE(ledger);
  EXPECT_NE(ledger.error().message.find("/nonexistent-turnout-dir/ledger.db"), std::string::npos)
      << ledger.error().message;
}

TEST(LedgerUrl, RedactionDropsUserInfoAndQuery) {
  EXPECT_EQ(redact_url("postgresql://u:p@h:1/db?sslmode=require"), "postgresql://h:1/db");
  EXPECT_EQ(redact_url("postgresql://h/db"), "postgresql://h/db");
  EXPECT_EQ(redact_url("postgres://u:p@w@h"), "postgres://h");
}

// ---------------------------------------------------------------------------------------
// Migrations

std::int64_t user_version(const fs::path& file) {
  auto db = sqlite::Database::open(file.string());
  return db->query_int("PRAGMA user_version").value();
}

bool has_index(const fs::path& file, const std::string& name) {
  auto db = sqlite::Database::open(file.string());
  return db->query_int("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = '" + name + "'").value() ==
         1;
}

TEST(LedgerMigrations, NewDatabaseIsAtTheNewestVersion) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  ASSERT_TRUE(open_or_die(sqlite_url(file)));
  EXPECT_EQ(user_version(file), static_cast<std::int64_t>(sqlite::ledger_migrations().size()));
}

TEST(LedgerMigrations, VersionOneDatabaseIsMigratedKeepingItsRecords) {
  ASSERT_GE(sqlite::ledger_migrations().size(), 2U) << "this test needs a step after version 1";
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  {
    auto db = sqlite::Database::open(file.string());
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec(sqlite::ledger_migrations()[0].sql));
    ASSERT_TRUE(db->exec("PRAGMA user_version = 1"));
    ASSERT_TRUE(db->exec(
        "INSERT INTO calls (record_key, id, timestamp, instance_id, client_key_id, requested_model, model, route, "
        "counted_prompt_tokens, prompt_tokens, completion_tokens, cached_tokens, usage_reported, cost_pico, "
        "baseline_cost_pico, latency_ms, ttft_ms, status, error_type, attempts, stream) VALUES "
        "('k1', 'old', 100, 'i', '', 'auto', 'gpt-4o', 'complex', 5, 5, 1, 0, 1, 42, 99, 7.5, NULL, 200, '', 1, 0)"));
  }

  auto ledger = open_or_die(sqlite_url(file));
  ASSERT_TRUE(ledger);
  EXPECT_EQ(user_version(file), static_cast<std::int64_t>(sqlite::ledger_migrations().size()));
  EXPECT_FALSE(has_index(file, "calls_model_latency"));  // dropped once roll-ups replaced it
  // The whole-ledger figures come from the day roll-ups, which the migration built from
  // the old raw row.
  const StatsReport report = stats_or_die(*ledger);
  EXPECT_EQ(report.total_calls, 1U);
  EXPECT_EQ(report.total_cost, Money{42});
  EXPECT_EQ(report.keys.at("").calls, 1U);
  EXPECT_EQ(report.models.at("gpt-4o").latency_ms.p99, 7.5);  // one latency: exact
  // Migration 4's columns, added before the roll-up backfill read the old row: it was a chat
  // call with an exact, whole count.
  auto db = sqlite::Database::open(file.string());
  ASSERT_TRUE(db);
  EXPECT_EQ(db->query_text("SELECT endpoint || ',' || count_estimated || ',' || count_partial FROM calls").value(),
            "chat,0,0");
}

TEST(LedgerMigrations, GovernanceDatabaseGainsRequestCountsKeepingItsBudgets) {
  const auto steps = sqlite::ledger_migrations();
  const auto mine = std::find_if(steps.begin(), steps.end(), [](const sqlite::Migration& step) {
    return std::string_view(step.description) == "governance request counts";
  });
  ASSERT_NE(mine, steps.end());
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  {
    auto db = sqlite::Database::open(file.string());
    ASSERT_TRUE(db);
    // The version before "governance request counts", with a budget row in it.
    ASSERT_TRUE(sqlite::migrate(*db, std::span(steps).first(static_cast<std::size_t>(mine - steps.begin()))));
    ASSERT_TRUE(db->exec("INSERT INTO gov_budgets (scope, period_start_ms, spent_pico) VALUES ('key:a', 0, 42)"));
  }
  ASSERT_TRUE(open_or_die(sqlite_url(file)));
  auto db = sqlite::Database::open(file.string());
  ASSERT_TRUE(db);
  EXPECT_EQ(db->query_int("PRAGMA user_version").value(), static_cast<std::int64_t>(steps.size()));
  EXPECT_EQ(db->query_int("SELECT spent_pico FROM gov_budgets WHERE scope = 'key:a'").value(), 42);
  ASSERT_TRUE(db->exec("INSERT INTO gov_rates (scope, window_start_ms, requests) VALUES ('key:a', 60000, 1)"));
  EXPECT_EQ(db->query_int("SELECT requests FROM gov_rates").value(), 1);
}

TEST(LedgerMigrations, HoldsTakenBeforeTokenCountsStillSettleAfterTheUpgrade) {
  const auto steps = sqlite::ledger_migrations();
  const auto mine = std::find_if(steps.begin(), steps.end(), [](const sqlite::Migration& step) {
    return std::string_view(step.description) == "governance token counts, slots and hold outcomes";
  });
  ASSERT_NE(mine, steps.end());
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  {
    auto db = sqlite::Database::open(file.string());
    ASSERT_TRUE(db);
    // The version before, with a budget row, a live hold of 30 on it and a rate window.
    ASSERT_TRUE(sqlite::migrate(*db, std::span(steps).first(static_cast<std::size_t>(mine - steps.begin()))));
    ASSERT_TRUE(db->exec(
        "INSERT INTO gov_budgets (scope, period_start_ms, spent_pico, held_pico) VALUES ('key:a', 0, 42, 30);"
        "INSERT INTO gov_holds (id, key_scope, key_period_ms, amount_pico, created_at_ms, expires_at_ms) "
        "VALUES ('ab', 'key:a', 0, 30, 1, 9000000000000);"
        "INSERT INTO gov_rates (scope, window_start_ms, requests) VALUES ('key:a', 60000, 3)"));
  }
  ASSERT_TRUE(open_or_die(sqlite_url(file)));
  {
    auto db = sqlite::Database::open(file.string());
    ASSERT_TRUE(db);
    EXPECT_EQ(db->query_int("PRAGMA user_version").value(), static_cast<std::int64_t>(steps.size()));
    EXPECT_EQ(db->query_text("SELECT tokens || ',' || (rate_window_ms IS NULL) FROM gov_holds").value(), "0,1");
    EXPECT_EQ(db->query_text("SELECT requests || ',' || tokens FROM gov_rates").value(), "3,0");
  }
  // The old hold settles as before: 50 charged, an overrun of 20 counted; no window to touch.
  auto backend = ledger::SqliteBackend::open(file.string());
  ASSERT_TRUE(backend);
  ledger::KeyedRecord keyed;
  keyed.key = "k-upgrade";
  keyed.record.id = "req";
  keyed.record.hold_id = "ab";
  keyed.record.cost = Money{50};
  keyed.record.usage.prompt_tokens = 7;
  ASSERT_TRUE((*backend)->write_batch(std::span(&keyed, 1)));
  auto db = sqlite::Database::open(file.string());
  ASSERT_TRUE(db);
  EXPECT_EQ(db->query_text("SELECT spent_pico || ',' || held_pico || ',' || overruns || ',' || overrun_pico "
                           "FROM gov_budgets").value(),
            "92,0,1,20");
  EXPECT_EQ(db->query_int("SELECT COUNT(*) FROM gov_holds").value(), 0);
  EXPECT_EQ(db->query_text("SELECT requests || ',' || tokens FROM gov_rates").value(), "3,0");
}

// The request-id index cost a WAL frame per commit and no query used it (issue 16). It
// goes without a table rebuild, the rows stay, and a gateway of the version before that
// still has the file open (its insert prepared against the old schema) keeps writing,
// idempotently: its insert names only record_key's uniqueness, which stays.
TEST(LedgerMigrations, RequestIdIndexIsDroppedAndAnOlderWriterKeepsWriting) {
  const auto steps = sqlite::ledger_migrations();
  const auto mine = std::find_if(steps.begin(), steps.end(), [](const sqlite::Migration& step) {
    return std::string_view(step.description) == "request ids not indexed";
  });
  ASSERT_NE(mine, steps.end());
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  auto older = sqlite::Database::open(file.string());
  ASSERT_TRUE(older);
  ASSERT_TRUE(older->exec("PRAGMA busy_timeout = 10000"));  // the new writer's commits and checkpoints
  ASSERT_TRUE(sqlite::migrate(*older, std::span(steps).first(static_cast<std::size_t>(mine - steps.begin()))));
  const auto index_names = [&file] {
    auto db = sqlite::Database::open(file.string());
    return db->query_text(
                 "SELECT COALESCE(group_concat(name, ','), '') FROM (SELECT name FROM sqlite_schema "
                 "WHERE type = 'index' AND tbl_name = 'calls' ORDER BY name)")
        .value();
  };
  ASSERT_EQ(index_names(), "calls_id,calls_timestamp,sqlite_autoindex_calls_1");
  auto old_insert = older->prepare(fmt::format(
      "INSERT INTO calls ({}, counted_by_fold) VALUES ({}, 1) ON CONFLICT (record_key) DO NOTHING",
      sqlite::call_row_columns(), sqlite::numbered_parameters(sqlite::kCallRowColumnCount)));
  ASSERT_TRUE(old_insert) << old_insert.error().message;
  const auto old_write = [&](const char* key, const char* id, double timestamp) {
    KeyedRecord keyed{key, sample_record(id, timestamp, "gpt-4o")};
    old_insert->reset();
    sqlite::bind_call_row(*old_insert, keyed);
    auto stepped = old_insert->step();
    old_insert->reset();
    old_insert->clear_bindings();
    return stepped.has_value() ? std::string() : stepped.error().message;
  };
  ASSERT_EQ(old_write("older-1", "before", 1), "");

  {
    auto ledger = open_or_die(sqlite_url(file));
    ASSERT_TRUE(ledger);
    EXPECT_EQ(user_version(file), static_cast<std::int64_t>(steps.size()));
    EXPECT_EQ(index_names(), "calls_timestamp,sqlite_autoindex_calls_1");
    // The older writer after the upgrade: a new record, then its re-send.
    EXPECT_EQ(old_write("older-2", "after", 2), "");
    EXPECT_EQ(old_write("older-2", "after", 2), "");
    ASSERT_TRUE(append_and_wait(*ledger, sample_record("after", 3, "gpt-4o")));
  }
  const auto rows = read_rows(file);
  ASSERT_EQ(rows.size(), 3U);
  EXPECT_EQ(rows[0].id, "before");
  EXPECT_EQ(rows[1].id, "after");
  EXPECT_EQ(rows[2].id, "after");  // one client id, two calls: both kept
}

TEST(LedgerMigrations, NewerDatabaseIsRefused) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  const auto newer = static_cast<std::int64_t>(sqlite::ledger_migrations().size()) + 1;
  {
    auto db = sqlite::Database::open(file.string());
    ASSERT_TRUE(db->exec("PRAGMA user_version = " + std::to_string(newer)));
  }
  auto ledger = open_ledger(sqlite_url(file));
  ASSERT_FALSE(ledger);
  EXPECT_NE(ledger.error().message.find("newer"), std::string::npos) << ledger.error().message;
  EXPECT_EQ(user_version(file), newer);  // untouched
}

TEST(LedgerMigrations, FailingStepLeavesTheDatabaseUntouched) {
  auto db = sqlite::Database::open(":memory:");
  ASSERT_TRUE(db);
  const std::vector<sqlite::Migration> broken{{"first", "CREATE TABLE a (x INTEGER)"},
                                              {"second", "CREATE TABLE b (x INTEGER); INSERT INTO missing VALUES (1)"}};
  auto migrated = sqlite::migrate(*db, broken);
  ASSERT_FALSE(migrated);
  EXPECT_NE(migrated.error().message.find("migration 2 (second)"), std::string::npos) << migrated.error().message;
  EXPECT_EQ(db->query_int("PRAGMA user_version").value(), 0);
  EXPECT_EQ(db->query_int("SELECT COUNT(*) FROM sqlite_master").value(), 0);
}

TEST(LedgerMigrations, OnlyStepsNotYetAppliedRun) {
  auto db = sqlite::Database::open(":memory:");
  ASSERT_TRUE(db);
  const std::vector<sqlite::Migration> steps{{"first", "CREATE TABLE a (x INTEGER)"},
                                             {"second", "CREATE TABLE b (x INTEGER)"}};
  ASSERT_TRUE(sqlite::migrate(*db, std::span(steps).first(1)));
  EXPECT_EQ(db->query_int("PRAGMA user_version").value(), 1);
  // Re-running "first" would fail (table a exists), so success proves it was skipped.
  ASSERT_TRUE(sqlite::migrate(*db, steps));
  EXPECT_EQ(db->query_int("PRAGMA user_version").value(), 2);
  ASSERT_TRUE(sqlite::migrate(*db, steps));
  EXPECT_EQ(db->query_int("SELECT COUNT(*) FROM sqlite_master").value(), 2);
}

// ---------------------------------------------------------------------------------------
// Writer: group commit, close, health

TEST(LedgerWriter, ConcurrentAppendsAreEachCommittedAndReportedOnce) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  constexpr int kThreads = 8;
  constexpr int kPerThread = 1000;
  std::vector<std::atomic<int>> reported(kThreads * kPerThread);
  std::atomic<int> failures{0};
  {
    auto ledger = open_or_die(sqlite_url(file));
    ASSERT_TRUE(ledger);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          const int index = t * kPerThread + i;
          ledger->append(sample_record("r" + std::to_string(index), index, "gpt-4o"), [&, index](Result<void> r) {
            reported[static_cast<std::size_t>(index)].fetch_add(1);
            if (!r) failures.fetch_add(1);
          });
        }
      });
    }
    for (auto& thread : threads) thread.join();
    ledger->close();
  }
  EXPECT_EQ(failures.load(), 0);
  for (std::size_t i = 0; i < reported.size(); ++i) {
    ASSERT_EQ(reported[i].load(), 1) << "record " << i;
  }
  const auto rows = read_rows(file);
  ASSERT_EQ(rows.size(), reported.size());
  std::vector<std::string> ids;
  for (const auto& row : rows) ids.push_back(row.id);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end()) << "a record was stored twice";
}

TEST(LedgerWriter, CloseDrainsTheQueueAndIsIdempotent) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  constexpr int kRecords = 5000;
  std::atomic<int> succeeded{0};
  auto ledger = open_or_die(sqlite_url(file));
  ASSERT_TRUE(ledger);
  for (int i = 0; i < kRecords; ++i) {
    ledger->append(sample_record("r" + std::to_string(i), i, "gpt-4o"), [&](Result<void> r) {
      if (r) succeeded.fetch_add(1);
    });
  }
  ledger->close();
  EXPECT_EQ(succeeded.load(), kRecords);  // every callback ran before close() returned
  ledger->close();

  bool rejected = false;
  ledger->append(sample_record("late", 1, "gpt-4o"), [&](Result<void> r) { rejected = !r; });
  EXPECT_TRUE(rejected) << "an append after close() must fail at once, not vanish";
  ledger.reset();
  EXPECT_EQ(read_rows(file).size(), static_cast<std::size_t>(kRecords));
}

TEST(LedgerWriter, UnwritableDatabaseMakesItUnhealthyUntilWritesSucceedAgain) {
  TempDir dir;
  const fs::path folder = dir.path() / "data";
  fs::create_directories(folder);
  const fs::path file = folder / "ledger.db";
  LedgerOptions options;
  options.retry_interval = std::chrono::milliseconds(20);
  auto ledger = open_or_die(sqlite_url(file), options);
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(append_and_wait(*ledger, sample_record("before", 1, "gpt-4o")));
  EXPECT_TRUE(ledger->health().healthy);

  fs::remove_all(folder);  // the file goes, and with it any place to recreate it
  const auto failed = append_and_wait(*ledger, sample_record("during", 2, "gpt-4o"));
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("ledger write failed"), std::string::npos) << failed.error().message;
  const LedgerHealth sick = ledger->health();
  EXPECT_FALSE(sick.healthy);
  EXPECT_NE(sick.reason.find("1 records waiting"), std::string::npos) << sick.reason;

  fs::create_directories(folder);
  ASSERT_TRUE(eventually([&] { return ledger->health().healthy; })) << ledger->health().reason;
  EXPECT_TRUE(ledger->health().reason.empty());
  ledger->close();
  // The failed record was kept and written once the database could be created again.
  const auto rows = read_rows(file);
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].id, "during");
}

TEST(LedgerWriter, ThrowingCallbackDoesNotStopTheWriter) {
  auto ledger = open_or_die("sqlite::memory:");
  ASSERT_TRUE(ledger);
  ledger->append(sample_record("a", 1, "gpt-4o"), [](Result<void>) { throw std::runtime_error("careless caller"); });
  ASSERT_TRUE(append_and_wait(*ledger, sample_record("b", 2, "gpt-4o")));
  EXPECT_EQ(stats_or_die(*ledger).total_calls, 2U);
}

TEST(LedgerWriter, MemoryDatabaseServesWritesAndConcurrentStats) {
  auto ledger = open_or_die("sqlite::memory:");
  auto other = open_or_die("sqlite::memory:");
  ASSERT_TRUE(ledger && other);
  std::atomic<bool> done{false};
  std::atomic<int> stats_failures{0};
  std::thread reader([&] {
    while (!done.load()) {
      if (!ledger->stats({})) stats_failures.fetch_add(1);
    }
  });
  constexpr int kRecords = 2000;
  std::atomic<int> succeeded{0};
  for (int i = 0; i < kRecords; ++i) {
    ledger->append(sample_record("m" + std::to_string(i), i, "gpt-4o-mini"), [&](Result<void> r) {
      if (r) succeeded.fetch_add(1);
    });
  }
  ASSERT_TRUE(append_and_wait(*ledger, sample_record("last", kRecords, "gpt-4o-mini")));
  done = true;
  reader.join();
  EXPECT_EQ(stats_failures.load(), 0);
  EXPECT_EQ(succeeded.load(), kRecords);
  EXPECT_EQ(stats_or_die(*ledger).total_calls, static_cast<std::uint64_t>(kRecords + 1));
  EXPECT_EQ(stats_or_die(*other).total_calls, 0U) << "each memory ledger is private";
}

// ---------------------------------------------------------------------------------------
// Statistics against a brute-force reference


TEST(LedgerStats, MatchesBruteForceOverWindows) {
  TempDir dir;
  auto records = random_records(3000, 20240601);
  auto ledger = open_or_die(sqlite_url(dir.path() / "ledger.db"));
  ASSERT_TRUE(ledger);
  append_all(*ledger, records);
  records.push_back(CallRecord{});  // the barrier record is part of the ledger too

  const double t0 = 1'700'000'000;
  const std::vector<StatsQuery> queries{
      {std::nullopt, std::nullopt, 10},
      {t0 + 25.0, std::nullopt, 10},  // since lands on records: they are included
      {std::nullopt, t0 + 50.25, 7},  // until lands on records: they are excluded
      {t0 + 10.5, t0 + 11.5, 1000},   // narrow window, fewer calls than asked for
      {t0 + 30, t0 + 30, 10},         // empty
      {t0 + 1000, std::nullopt, 10},  // after every call
      {t0, t0 + 99.75, 0},            // recent disabled
      {std::nullopt, std::nullopt, 100000},
  };
  for (const StatsQuery& query : queries) {
    SCOPED_TRACE(::testing::Message() << "since=" << query.since.value_or(-1) << " until=" << query.until.value_or(-1)
                                      << " recent=" << query.recent);
    expect_same_stats(brute_force_stats(records, query), stats_or_die(*ledger, query));
  }
}

TEST(LedgerStats, PercentilesUseNearestRank) {
  auto ledger = open_or_die("sqlite::memory:");
  ASSERT_TRUE(ledger);
  std::vector<CallRecord> records;
  for (int i = 100; i >= 1; --i) records.push_back(sample_record("h" + std::to_string(i), i, "hundred"));
  for (double latency : {30.0, 10.0, 20.0}) {
    records.push_back(sample_record("t", 1, "three"));
    records.back().latency_ms = latency;
  }
  records.push_back(sample_record("o", 1, "one"));
  for (std::size_t i = 0; i < 100; ++i) records[i].latency_ms = static_cast<double>(100 - i);
  append_all(*ledger, records);

  const StatsReport report = stats_or_die(*ledger);
  const LatencySummary hundred = report.models.at("hundred").latency_ms;
  expect_same_percentile(50, hundred.p50, "p50");  // rank ceil(0.50 * 100) = 50
  expect_same_percentile(95, hundred.p95, "p95");
  expect_same_percentile(99, hundred.p99, "p99");
  EXPECT_DOUBLE_EQ(hundred.avg, 50.5);  // averages are exact
  // Buckets holding one distinct latency answer exactly.
  const LatencySummary three = report.models.at("three").latency_ms;
  EXPECT_EQ(three.p50, 20);  // rank ceil(1.5) = 2
  EXPECT_EQ(three.p95, 30);  // rank ceil(2.85) = 3
  const LatencySummary one = report.models.at("one").latency_ms;
  EXPECT_EQ(one.p50, 12.5);
  EXPECT_EQ(one.p99, 12.5);
}

// Appends `count` windows [a, b) between random quarter seconds of the `quarters` after t0.
void add_random_quarter_windows(std::vector<StatsQuery>& queries, double t0, std::size_t quarters, int count,
                                unsigned seed) {
  std::mt19937 rng(seed);
  for (int i = 0; i < count; ++i) {
    const double a = t0 + static_cast<double>(rng() % quarters) * 0.25;
    const double b = t0 + static_cast<double>(rng() % quarters) * 0.25;
    queries.push_back(StatsQuery{std::min(a, b), std::max(a, b), 3});
  }
}

// Every window's stats from the ledger equal the brute-force figures over the raw records.
void expect_windows_match_brute_force(const std::vector<CallRecord>& records, Ledger& ledger,
                                      const std::vector<StatsQuery>& queries) {
  for (const StatsQuery& query : queries) {
    SCOPED_TRACE(::testing::Message() << std::fixed << "since=" << query.since.value_or(-1)
                                      << " until=" << query.until.value_or(-1));
    expect_same_stats(brute_force_stats(records, query), stats_or_die(ledger, query));
  }
}

// Records spread over three days, windows at random quarter seconds and on minute, hour
// and day boundaries: every figure comes from a mix of day, hour and minute roll-ups and
// raw edge rows, and must equal the brute-force figure over the raw records.
TEST(LedgerStats, RollupsMatchBruteForceOverWindowsAcrossDays) {
  TempDir dir;
  constexpr std::size_t kQuarters = 3 * 86'400 * 4;
  auto records = random_records(4000, 777, kQuarters);
  auto ledger = open_or_die(sqlite_url(dir.path() / "ledger.db"));
  ASSERT_TRUE(ledger);
  append_all(*ledger, records);
  records.push_back(CallRecord{});  // the barrier record

  const double t0 = 1'700'000'000;
  const double day = 1'700'006'400;  // a day boundary (a multiple of 86400) inside the span
  std::vector<StatsQuery> queries{
      {day, std::nullopt, 5},          {std::nullopt, day, 5},          {day - 3600, day + 3600, 5},
      {day + 60, day + 86'400 - 60, 5}, {day - 0.25, day + 0.25, 5},    {day + 30.5, day + 89.75, 5},
      {t0 - 1, t0 + 4 * 86'400, 5},
  };
  add_random_quarter_windows(queries, t0, kQuarters, 40, 4242);
  expect_windows_match_brute_force(records, *ledger, queries);
}

// The segments of [since, until): contiguous, aligned, and raw only below `raw_limit` seconds.
void expect_exact_cover(double since, double until, double seconds_since, double raw_limit) {
  SCOPED_TRACE(::testing::Message() << std::fixed << since << ".." << until << " seconds from " << seconds_since);
  const auto segments = plan_stats_segments(since, until, seconds_since);
  ASSERT_FALSE(segments.empty());
  std::vector<std::pair<double, double>> ranges;
  for (const auto& segment : segments) ranges.emplace_back(segment.since, segment.until);
  std::sort(ranges.begin(), ranges.end());
  EXPECT_EQ(ranges.front().first, since);
  EXPECT_EQ(ranges.back().second, until);
  for (std::size_t i = 1; i < ranges.size(); ++i) EXPECT_EQ(ranges[i - 1].second, ranges[i].first);
  for (const auto& segment : segments) {
    if (segment.width == 0) {
      EXPECT_LT(segment.until - segment.since, raw_limit);
    } else {
      EXPECT_EQ(std::fmod(segment.since, static_cast<double>(segment.width)), 0);
      EXPECT_EQ(std::fmod(segment.until, static_cast<double>(segment.width)), 0);
      if (segment.width == kSecondWidth) {
        EXPECT_GE(segment.since, seconds_since);
      }
    }
  }
}

// The last day also has second buckets: records from the last six hours, windows at
// random quarter seconds (so edges fall inside seconds, minutes and hours).
TEST(LedgerStats, RecentWindowsUseSecondRollupsAndMatchBruteForce) {
  TempDir dir;
  constexpr std::size_t kQuarters = 6 * 3'600 * 4;
  const double t0 = std::floor(unix_now()) - 6 * 3'600 - 1;
  auto records = random_records(3000, 99, kQuarters);
  for (CallRecord& r : records) r.timestamp += t0 - 1'700'000'000;  // same grid, shifted to now
  auto ledger = open_or_die(sqlite_url(dir.path() / "ledger.db"));
  ASSERT_TRUE(ledger);
  append_all(*ledger, records);
  records.push_back(CallRecord{});  // the barrier record

  std::vector<StatsQuery> queries{{t0 + 3'600.25, std::nullopt, 5}, {std::nullopt, t0 + 7'200.75, 5}};
  add_random_quarter_windows(queries, t0, kQuarters, 30, 99);
  expect_windows_match_brute_force(records, *ledger, queries);
}

TEST(LedgerStats, SegmentsCoverTheWindowExactlyOnce) {
  const double day = 1'700'006'400;
  const double never = std::numeric_limits<double>::infinity();
  // raw head, minute, hour... then day(s), then hour, minute and raw tail.
  expect_exact_cover(day - 90.5, day + 2 * 86'400 + 3'600 + 61.25, never, 60);
  // Where second buckets exist, raw rows only for partial seconds.
  expect_exact_cover(day - 90.5, day + 2 * 86'400 + 3'600 + 61.25, day - 100, 1);
  // Second buckets from the middle of the window on: minute-sized raw head, second-sized tail.
  expect_exact_cover(day - 90.5, day + 3'600 + 61.25, day, 60);
  const auto whole = plan_stats_segments(-never, never, day);
  ASSERT_EQ(whole.size(), 1U);  // the whole ledger: the coarsest roll-ups only
  EXPECT_EQ(whole[0].width, kRollupWidths.front());
}

// ---------------------------------------------------------------------------------------
// Retention

TEST(LedgerRetention, OldRawRecordsAreDeletedAndTheirRollupsKept) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  LedgerOptions options;
  options.retention = std::chrono::days(7);
  options.retention_check_interval = std::chrono::seconds(0);
  auto ledger = open_or_die(sqlite_url(file), options);
  ASSERT_TRUE(ledger);
  std::vector<CallRecord> records;
  for (int i = 0; i < 30; ++i) records.push_back(sample_record("old-" + std::to_string(i), now - 10 * 86'400 + i, "gpt-4o"));
  for (int i = 0; i < 20; ++i) records.push_back(sample_record("new-" + std::to_string(i), now - 3600 + i, "gpt-4o"));
  append_all(*ledger, records);

  const auto raw_count = [&]() -> std::int64_t {
    auto db = sqlite::Database::open(file.string(), sqlite::Database::OpenMode::existing_only);
    auto count = db ? db->query_int("SELECT COUNT(*) FROM calls WHERE id LIKE 'old-%'") : Result<std::int64_t>(-1);
    return count ? *count : -1;
  };
  EXPECT_TRUE(eventually([&] { return raw_count() == 0; }));
  const StatsReport report = stats_or_die(*ledger, StatsQuery{std::nullopt, std::nullopt, 100});
  EXPECT_EQ(report.total_calls, 51U);  // 30 pruned + 20 kept + the barrier, all in the roll-ups
  EXPECT_EQ(report.total_cost, Money{1000 * 50});
  ASSERT_EQ(report.recent_calls.size(), 20U);  // raw rows: only the kept ones (the barrier, at t=0, went too)
  for (const auto& call : report.recent_calls) EXPECT_FALSE(call.id.starts_with("old-")) << call.id;
}

// `turnout stats` opens with the config's retention for its replay's cutoff only: its
// writer must not delete the raw rows past it (the recent list and exports keep them).
TEST(LedgerRetention, DeleteExpiredOffKeepsOldRawRecords) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  LedgerOptions options;
  options.retention = std::chrono::days(7);
  options.retention_check_interval = std::chrono::seconds(0);
  options.delete_expired = false;
  {
    auto ledger = open_or_die(sqlite_url(file), options);
    ASSERT_TRUE(ledger);
    std::vector<CallRecord> records;
    for (int i = 0; i < 30; ++i) records.push_back(sample_record("old-" + std::to_string(i), now - 10 * 86'400 + i, "gpt-4o"));
    append_all(*ledger, records);
    // Writer rounds after the append (a fold request and its answer), each of which would
    // run a retention chunk with the check interval at zero.
    for (int round = 0; round < 3; ++round) (void)stats_or_die(*ledger, StatsQuery{std::nullopt, std::nullopt, 100});
  }
  auto db = sqlite::Database::open(file.string(), sqlite::Database::OpenMode::existing_only);
  ASSERT_TRUE(db);
  auto count = db->query_int("SELECT COUNT(*) FROM calls WHERE id LIKE 'old-%'");
  ASSERT_TRUE(count);
  EXPECT_EQ(*count, 30);
}

TEST(LedgerStats, UnpricedCallsAreCountedAndNeverCostZero) {
  auto ledger = open_or_die("sqlite::memory:");
  ASSERT_TRUE(ledger);
  CallRecord priced = sample_record("p", 1, "gpt-4o-mini");
  priced.cost = Money{300};
  priced.baseline_cost = Money{1000};
  CallRecord unpriced = sample_record("u", 2, "mystery");
  unpriced.cost.reset();
  unpriced.baseline_cost = Money{4000};  // known baseline, unknown cost: no saving claimed
  CallRecord mixed_priced = sample_record("m1", 3, "half");
  mixed_priced.cost = Money{50};
  mixed_priced.baseline_cost.reset();  // no baseline price: contributes to neither sum
  CallRecord mixed_unpriced = sample_record("m2", 4, "half");
  mixed_unpriced.cost.reset();
  append_all(*ledger, {priced, unpriced, mixed_priced, mixed_unpriced});

  const StatsReport report = stats_or_die(*ledger, StatsQuery{1, 5, 10});
  EXPECT_EQ(report.unpriced_calls, 2U);
  EXPECT_EQ(report.total_cost, Money{350});
  EXPECT_EQ(report.baseline_cost, Money{1000 + 4000 + 5000});
  EXPECT_EQ(report.savings, Money{1000 - 300});
  EXPECT_FALSE(report.models.at("mystery").cost.has_value());
  EXPECT_EQ(report.models.at("mystery").unpriced_calls, 1U);
  EXPECT_EQ(report.models.at("half").cost, Money{50});
  EXPECT_EQ(report.models.at("half").unpriced_calls, 1U);
  ASSERT_EQ(report.recent_calls.size(), 4U);
  EXPECT_FALSE(report.recent_calls[1].cost.has_value());
  EXPECT_EQ(report.recent_calls[0].cost, Money{300});

  const json::value body = json::parse(render_stats_json(report));
  EXPECT_TRUE(body.at("models").at("mystery").at("cost_usd").is_null());
  EXPECT_FALSE(body.at("models").at("half").at("cost_usd").is_null());
  EXPECT_TRUE(body.at("recent_calls").at(1).at("cost_usd").is_null());
  EXPECT_EQ(body.at("unpriced_calls").as_int64(), 2);
}

TEST(LedgerStats, CostSumsAreExact) {
  // 0.1 + 0.2 in dollars, a million times: exact in pico-dollars, drifting in doubles.
  auto ledger = open_or_die("sqlite::memory:");
  ASSERT_TRUE(ledger);
  std::vector<CallRecord> records;
  for (int i = 0; i < 20000; ++i) {
    records.push_back(sample_record("c" + std::to_string(i), i, i % 2 ? "a" : "b"));
    records.back().cost = Money{i % 2 ? 100'000'000'000 : 200'000'000'000};
    records.back().baseline_cost = Money{1'000'000'000'001};
  }
  append_all(*ledger, records);
  const StatsReport report = stats_or_die(*ledger, StatsQuery{0, 20000, 0});
  EXPECT_EQ(report.total_cost, Money{10000 * 100'000'000'000LL + 10000 * 200'000'000'000LL});
  EXPECT_EQ(pricing::format_usd(report.total_cost), "3000");
  EXPECT_EQ(report.baseline_cost, Money{20000 * 1'000'000'000'001LL});
  EXPECT_NE(render_stats_json(report).find("\"baseline_cost_usd\":20000.00000002,"), std::string::npos);
}

// ---------------------------------------------------------------------------------------
// JSON body

std::vector<std::string> keys_of(const json::object& object) {
  std::vector<std::string> keys;
  for (const auto& entry : object) keys.emplace_back(entry.key());
  return keys;
}

TEST(LedgerStatsJson, HasSpecShapeAndExactValues) {
  auto ledger = open_or_die("sqlite::memory:");
  ASSERT_TRUE(ledger);
  auto records = random_records(200, 7);
  append_all(*ledger, records);
  records.push_back(CallRecord{});
  const StatsQuery query{std::nullopt, std::nullopt, 5};
  const StatsReport report = stats_or_die(*ledger, query);
  const StatsReport expected = brute_force_stats(records, query);
  const std::string text = render_stats_json(report);
  const json::object body = json::parse(text).as_object();

  EXPECT_EQ(keys_of(body),
            (std::vector<std::string>{"total_calls", "total_cost_usd", "avg_latency_ms", "model_distribution",
                                      "recent_calls", "errors", "models", "routes", "baseline_cost_usd", "savings_usd",
                                      "unpriced_calls", "keys", "latency_ms", "prompt_tokens", "completion_tokens",
                                      "endpoints"}));
  EXPECT_EQ(body.at("total_calls").to_number<std::uint64_t>(), expected.total_calls);
  EXPECT_EQ(body.at("errors").to_number<std::uint64_t>(), expected.errors);
  EXPECT_EQ(body.at("unpriced_calls").to_number<std::uint64_t>(), expected.unpriced_calls);
  // Money is written as exact decimal text; the parsed double is only a cross-check.
  for (auto [name, amount] : {std::pair{"total_cost_usd", expected.total_cost},
                              std::pair{"baseline_cost_usd", expected.baseline_cost},
                              std::pair{"savings_usd", expected.savings}}) {
    EXPECT_NE(text.find("\"" + std::string(name) + "\":" + pricing::format_usd(amount) + ","), std::string::npos)
        << name;
    EXPECT_NEAR(body.at(name).to_number<double>(), static_cast<double>(amount.pico) * 1e-12, 1e-9) << name;
  }
  EXPECT_NEAR(body.at("avg_latency_ms").to_number<double>(), expected.avg_latency_ms, 5e-4);

  const json::object& distribution = body.at("model_distribution").as_object();
  ASSERT_EQ(distribution.size(), expected.model_distribution.size());
  for (const auto& [name, count] : expected.model_distribution) {
    EXPECT_EQ(distribution.at(name).to_number<std::uint64_t>(), count) << name;
  }
  const json::object& routes = body.at("routes").as_object();
  ASSERT_EQ(routes.size(), expected.routes.size());
  for (const auto& [name, count] : expected.routes) {
    EXPECT_EQ(routes.at(name).to_number<std::uint64_t>(), count) << name;
  }

  const json::object& models = body.at("models").as_object();
  ASSERT_EQ(models.size(), expected.models.size());
  for (const auto& [name, want] : expected.models) {
    const json::object& got = models.at(name).as_object();
    EXPECT_EQ(keys_of(got), (std::vector<std::string>{"calls", "errors", "prompt_tokens", "completion_tokens",
                                                      "cost_usd", "latency_ms"}));
    EXPECT_EQ(got.at("calls").to_number<std::uint64_t>(), want.calls);
    EXPECT_EQ(got.at("errors").to_number<std::uint64_t>(), want.errors);
    EXPECT_EQ(got.at("prompt_tokens").to_number<std::uint64_t>(), want.prompt_tokens);
    EXPECT_EQ(got.at("completion_tokens").to_number<std::uint64_t>(), want.completion_tokens);
    if (want.cost) {
      EXPECT_NE(text.find("\"cost_usd\":" + pricing::format_usd(*want.cost) + ","), std::string::npos) << name;
    } else {
      EXPECT_TRUE(got.at("cost_usd").is_null()) << name;
    }
    const json::object& latency = got.at("latency_ms").as_object();
    EXPECT_EQ(keys_of(latency), (std::vector<std::string>{"avg", "p50", "p95", "p99"}));
    EXPECT_NEAR(latency.at("avg").to_number<double>(), want.latency_ms.avg, 5e-4);
    // Rounded to 3 decimals in the JSON; the histogram answer is checked in expect_same_stats.
    const LatencySummary& reported = report.models.at(name).latency_ms;
    EXPECT_NEAR(latency.at("p50").to_number<double>(), reported.p50, 5e-4);
    EXPECT_NEAR(latency.at("p95").to_number<double>(), reported.p95, 5e-4);
    EXPECT_NEAR(latency.at("p99").to_number<double>(), reported.p99, 5e-4);
    expect_same_percentile(want.latency_ms.p50, latency.at("p50").to_number<double>(), name + " p50");
  }

  // Per client key: calls, tokens and exact cost; a gateway without keys shows "anonymous".
  const json::object& keys = body.at("keys").as_object();
  ASSERT_EQ(keys.size(), expected.keys.size());
  for (const auto& [id, want] : expected.keys) {
    const json::object& got = keys.at(id.empty() ? "anonymous" : id).as_object();
    EXPECT_EQ(keys_of(got), (std::vector<std::string>{"calls", "prompt_tokens", "completion_tokens", "tokens",
                                                      "cost_usd"}));
    EXPECT_EQ(got.at("calls").to_number<std::uint64_t>(), want.calls) << id;
    EXPECT_EQ(got.at("tokens").to_number<std::uint64_t>(), want.prompt_tokens + want.completion_tokens) << id;
    ASSERT_TRUE(want.cost) << id;
    EXPECT_NE(text.find("\"cost_usd\":" + pricing::format_usd(*want.cost) + "}"), std::string::npos) << id;
  }

  // Per endpoint (chat, embeddings, responses): calls, errors, tokens, exact cost, latency.
  const json::object& endpoints = body.at("endpoints").as_object();
  ASSERT_EQ(endpoints.size(), expected.endpoints.size());
  for (const auto& [name, want] : expected.endpoints) {
    const json::object& got = endpoints.at(name).as_object();
    EXPECT_EQ(keys_of(got), (std::vector<std::string>{"calls", "errors", "prompt_tokens", "completion_tokens", "tokens",
                                                      "cost_usd", "unpriced_calls", "avg_latency_ms"}));
    EXPECT_EQ(got.at("calls").to_number<std::uint64_t>(), want.calls) << name;
    EXPECT_EQ(got.at("errors").to_number<std::uint64_t>(), want.errors) << name;
    EXPECT_EQ(got.at("tokens").to_number<std::uint64_t>(), want.prompt_tokens + want.completion_tokens) << name;
    EXPECT_EQ(got.at("unpriced_calls").to_number<std::uint64_t>(), want.unpriced_calls) << name;
    ASSERT_TRUE(want.cost) << name;
    EXPECT_NE(text.find("\"cost_usd\":" + pricing::format_usd(*want.cost) + ",\"unpriced_calls\""), std::string::npos)
        << name;
    EXPECT_NEAR(got.at("avg_latency_ms").to_number<double>(), want.avg_latency_ms, 5e-4) << name;
  }

  const json::array& recent = body.at("recent_calls").as_array();
  ASSERT_EQ(recent.size(), 5U);
  for (std::size_t i = 0; i < recent.size(); ++i) {
    const RecentCall& want = expected.recent_calls[i];
    const json::object& got = recent[i].as_object();
    EXPECT_EQ(keys_of(got), (std::vector<std::string>{"id", "timestamp", "model", "route", "cost_usd", "latency_ms",
                                                      "tokens", "prompt_tokens", "completion_tokens", "status",
                                                      "counted_prompt_tokens", "attempts", "error_type"}));
    EXPECT_EQ(got.at("id").as_string(), want.id);
    EXPECT_EQ(got.at("timestamp").to_number<double>(), want.timestamp);
    EXPECT_EQ(got.at("model").as_string(), want.model);
    EXPECT_EQ(got.at("route").as_string(), want.route);
    if (want.cost) {
      EXPECT_NEAR(got.at("cost_usd").to_number<double>(), static_cast<double>(want.cost->pico) * 1e-12, 1e-15);
    } else {
      EXPECT_TRUE(got.at("cost_usd").is_null());
    }
    EXPECT_DOUBLE_EQ(got.at("latency_ms").to_number<double>(), want.latency_ms);
    EXPECT_EQ(got.at("tokens").to_number<std::uint64_t>(), want.prompt_tokens + want.completion_tokens);
    EXPECT_EQ(got.at("prompt_tokens").to_number<std::uint64_t>(), want.prompt_tokens);
    EXPECT_EQ(got.at("completion_tokens").to_number<std::uint64_t>(), want.completion_tokens);
    EXPECT_EQ(got.at("status").to_number<int>(), want.status);
    EXPECT_EQ(got.at("counted_prompt_tokens").to_number<std::uint64_t>(), want.counted_prompt_tokens);
    EXPECT_EQ(got.at("attempts").to_number<int>(), want.attempts);
    EXPECT_EQ(got.at("error_type").as_string(), want.error_type);
  }
  // Over every call: the percentiles of all models' histograms together, and the usage.
  const json::object& overall = body.at("latency_ms").as_object();
  EXPECT_EQ(keys_of(overall), (std::vector<std::string>{"avg", "p50", "p95", "p99"}));
  expect_same_percentile(expected.latency_ms.p50, overall.at("p50").to_number<double>(), "overall p50");
  expect_same_percentile(expected.latency_ms.p99, overall.at("p99").to_number<double>(), "overall p99");
  std::uint64_t prompt_tokens = 0;
  for (const CallRecord& r : records) prompt_tokens += r.usage.prompt_tokens;
  EXPECT_EQ(body.at("prompt_tokens").to_number<std::uint64_t>(), prompt_tokens);
}

TEST(LedgerStatsJson, EmptyLedgerRendersZeros) {
  const json::value body = json::parse(render_stats_json(StatsReport{}));
  EXPECT_EQ(body.at("total_calls").to_number<int>(), 0);
  EXPECT_EQ(body.at("total_cost_usd").to_number<double>(), 0.0);
  EXPECT_TRUE(body.at("recent_calls").as_array().empty());
  EXPECT_TRUE(body.at("models").as_object().empty());
}

TEST(LedgerStatsJson, StringsAreEscapedAndAlwaysValidUtf8) {
  StatsReport report;
  const std::string awkward = "we\"ird\\name\n\t\x01 ü 😀";
  const std::string broken = "bad\xff\xc0name\xe2\x82";  // invalid bytes, truncated sequence
  report.total_calls = 2;
  report.model_distribution = {{awkward, 1}, {broken, 1}};
  report.recent_calls.push_back(RecentCall{awkward, 1.5, broken, "</script>", std::nullopt, 1, 1, 1, 200});
  const json::value body = json::parse(render_stats_json(report));
  const json::object& distribution = body.at("model_distribution").as_object();
  EXPECT_TRUE(distribution.contains(awkward));
  EXPECT_TRUE(distribution.contains("bad\uFFFD\uFFFDname\uFFFD"));
  EXPECT_EQ(body.at("recent_calls").at(0).at("id").as_string(), awkward);
}

}  // namespace
