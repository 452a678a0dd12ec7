// Ledger tests on a real PostgreSQL server: a private cluster started by
// scripts/pg-test-cluster.sh for this run (skipped only when the PostgreSQL server
// binaries are not installed). Each test works in its own schema (the URL's search_path),
// so tests never see each other's records. Covered: every field round trip, idempotent
// re-sent batches, migrations (versioned, concurrent starts), concurrent appends from
// threads and from two ledger instances, /stats against the brute-force reference shared
// with the SQLite tests, reconnection and recovery, and passwords kept out of messages.
#include "ledger/ledger.hpp"
#include "ledger/postgres/connection.hpp"
#include "ledger/postgres/schema.hpp"
#include "ledger/postgres/backend.hpp"
#include "ledger_reference.hpp"
#include "version4_rollups.hpp"
#include "pg_test_cluster.hpp"

#include <gtest/gtest.h>

#include <iostream>
#include <set>
#include <span>

namespace {

using namespace turnout;
using namespace turnout::ledger;
using namespace turnout::ledger::test;
using turnout::test::PgTestCluster;

// One cluster for the whole test program; a schema per test.
class PostgresLedgerTest : public turnout::test::PgSchemaTest {
 protected:
  PostgresLedgerTest() : PgSchemaTest("t_") {}

  Result<pg::Connection> admin_connection() const {
    auto target = pg::ConnectionTarget::parse(schema_.empty() ? base_url() : url());
    if (!target) return target.error();
    return pg::Connection::open(*target);
  }

  std::int64_t scalar(const std::string& sql) const {
    auto admin = admin_connection();
    EXPECT_TRUE(admin) << admin.error().message;
    auto result = admin->query(sql);
    EXPECT_TRUE(result) << result.error().message;
    return result->integer(0, 0).value();
  }

  // Every stored row in write order, read with the schema's column names.
  std::vector<CallRecord> read_rows() const {
    auto admin = admin_connection();
    EXPECT_TRUE(admin) << admin.error().message;
    auto rows = admin->query(
        "SELECT id, timestamp, instance_id, client_key_id, requested_model, model, route, counted_prompt_tokens, "
        "prompt_tokens, completion_tokens, cached_tokens, usage_reported, cost_pico, baseline_cost_pico, "
        "latency_ms, ttft_ms, status, error_type, attempts, stream FROM calls ORDER BY seq");
    EXPECT_TRUE(rows) << rows.error().message;
    std::vector<CallRecord> records;
    for (int row = 0; row < rows->rows(); ++row) {
      const auto text = [&](int column) { return std::string(rows->text(row, column)); };
      const auto count = [&](int column) { return static_cast<std::uint64_t>(rows->integer(row, column).value()); };
      CallRecord r;
      r.id = text(0);
      r.timestamp = rows->real(row, 1).value();
      r.instance_id = text(2);
      r.client_key_id = text(3);
      r.requested_model = text(4);
      r.model = text(5);
      r.route = text(6);
      if (!rows->is_null(row, 7)) r.counted_prompt_tokens = count(7);
      r.usage = {count(8), count(9), count(10)};
      r.usage_reported = text(11) == "t";
      if (!rows->is_null(row, 12)) r.cost = Money{rows->integer(row, 12).value()};
      if (!rows->is_null(row, 13)) r.baseline_cost = Money{rows->integer(row, 13).value()};
      r.latency_ms = rows->real(row, 14).value();
      if (!rows->is_null(row, 15)) r.ttft_ms = rows->real(row, 15).value();
      r.status = static_cast<int>(count(16));
      r.error_type = text(17);
      r.attempts = static_cast<int>(count(18));
      r.stream = text(19) == "t";
      records.push_back(std::move(r));
    }
    return records;
  }
};

// ---------------------------------------------------------------------------------------
// Storage

TEST_F(PostgresLedgerTest, EveryFieldRoundTrips) {
  CallRecord full;
  full.id = "req-\"quoted\"-\\-tab\there-\nnewline-ü-😀";
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
  sparse.timestamp = 0.1 + 0.2;  // a double with no short decimal form
  sparse.usage = {(std::uint64_t{1} << 40), 0, 0};
  sparse.status = 502;

  {
    auto ledger = open_or_die(url());
    ASSERT_TRUE(ledger);
    ASSERT_TRUE(append_and_wait(*ledger, full));
    ASSERT_TRUE(append_and_wait(*ledger, sparse));
  }
  const auto rows = read_rows();
  ASSERT_EQ(rows.size(), 2U);
  expect_same_record(full, rows[0]);
  expect_same_record(sparse, rows[1]);
}

TEST_F(PostgresLedgerTest, TextThatIsNotValidUtf8IsStoredWithReplacementCharacters) {
  auto ledger = open_or_die(url());
  ASSERT_TRUE(ledger);
  CallRecord odd = sample_record(std::string("bad\xff-nul\0-end", 13), 1, "gpt-4o");
  ASSERT_TRUE(append_and_wait(*ledger, odd));
  const auto rows = read_rows();
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].id, "bad\uFFFD-nul\uFFFD-end");
}

TEST_F(PostgresLedgerTest, ResentBatchIsStoredOnceAndReusedRequestIdsAreKept) {
  auto backend = PostgresBackend::open(url());
  ASSERT_TRUE(backend) << backend.error().message;
  const std::vector<KeyedRecord> batch{{"key-1", sample_record("same-id", 1, "gpt-4o")},
                                       {"key-2", sample_record("same-id", 2, "gpt-4o-mini")}};
  ASSERT_TRUE((*backend)->write_batch(batch));
  ASSERT_TRUE((*backend)->write_batch(batch)) << "a re-sent batch (commit outcome unknown) must succeed";
  const auto rows = read_rows();
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[0].model, "gpt-4o");
  EXPECT_EQ(rows[1].model, "gpt-4o-mini");
}

TEST_F(PostgresLedgerTest, RecordsSurviveReopening) {
  {
    auto ledger = open_or_die(url());
    ASSERT_TRUE(ledger);
    ASSERT_TRUE(append_and_wait(*ledger, sample_record("a", 1, "gpt-4o")));
  }
  auto reopened = open_or_die(url());
  ASSERT_TRUE(reopened);
  ASSERT_TRUE(append_and_wait(*reopened, sample_record("b", 2, "gpt-4o")));
  EXPECT_EQ(stats_or_die(*reopened).total_calls, 2U);
}

// ---------------------------------------------------------------------------------------
// Migrations

TEST_F(PostgresLedgerTest, InstancesStartingTogetherMigrateOnce) {
  constexpr int kInstances = 6;
  std::vector<std::future<Result<std::unique_ptr<Ledger>>>> opening;
  for (int i = 0; i < kInstances; ++i) {
    opening.push_back(std::async(std::launch::async, [this] { return open_ledger(url()); }));
  }
  std::set<std::string> secrets;
  for (auto& opened : opening) {
    auto ledger = opened.get();
    EXPECT_TRUE(ledger) << ledger.error().message;
    if (ledger) secrets.insert((*ledger)->installation_secret());
  }
  const auto newest = static_cast<std::int64_t>(pg::ledger_migrations().size());
  EXPECT_EQ(scalar("SELECT MAX(version) FROM schema_version"), newest);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM schema_version"), newest) << "each step is applied and recorded once";
  // Client key ids are keyed by this secret: instances sharing the ledger must agree on it.
  EXPECT_EQ(secrets.size(), 1U) << "instances starting together read one installation secret";
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM metadata WHERE name = 'installation_secret'"), 1);
  auto later = open_ledger(url());
  ASSERT_TRUE(later) << later.error().message;
  EXPECT_EQ(secrets.count((*later)->installation_secret()), 1U) << "and a later start reads the same one";
}

// A ledger written before roll-ups existed: the migration builds them from its raw rows
// (through the same record scan as export), so /stats reports them.
TEST_F(PostgresLedgerTest, VersionOneDatabaseGetsRollupsOfItsRecords) {
  auto admin = admin_connection();
  ASSERT_TRUE(admin);
  ASSERT_TRUE(admin->exec("SET extra_float_digits = 3"));
  ASSERT_TRUE(pg::migrate(*admin, std::span(pg::ledger_migrations()).first(1)));
  ASSERT_TRUE(admin->exec(
      "INSERT INTO calls (record_key, id, timestamp, instance_id, client_key_id, requested_model, model, route, "
      "counted_prompt_tokens, prompt_tokens, completion_tokens, cached_tokens, usage_reported, cost_pico, "
      "baseline_cost_pico, latency_ms, ttft_ms, status, error_type, attempts, stream) VALUES "
      "('k1', 'old', 100, 'i', 'key_a', 'auto', 'gpt-4o', 'complex', 5, 5, 1, 0, true, 42, 99, 7.5, NULL, 200, '', "
      "1, false)"));

  auto ledger = open_or_die(url());
  ASSERT_TRUE(ledger);
  EXPECT_EQ(scalar("SELECT MAX(version) FROM schema_version"),
            static_cast<std::int64_t>(pg::ledger_migrations().size()));
  const StatsReport report = stats_or_die(*ledger);  // whole ledger: roll-ups only
  EXPECT_EQ(report.total_calls, 1U);
  EXPECT_EQ(report.total_cost, Money{42});
  EXPECT_EQ(report.keys.at("key_a").calls, 1U);
  EXPECT_EQ(report.models.at("gpt-4o").latency_ms.p99, 7.5);
}

TEST_F(PostgresLedgerTest, NewerDatabaseIsRefused) {
  ASSERT_TRUE(open_or_die(url()));
  const auto newer = static_cast<std::int64_t>(pg::ledger_migrations().size()) + 1;
  auto admin = admin_connection();
  ASSERT_TRUE(admin);
  ASSERT_TRUE(admin->exec("INSERT INTO schema_version (version, description) VALUES (" + std::to_string(newer) +
                          ", 'from the future')"));
  auto ledger = open_ledger(url());
  ASSERT_FALSE(ledger);
  EXPECT_NE(ledger.error().message.find("newer"), std::string::npos) << ledger.error().message;
}

TEST_F(PostgresLedgerTest, FailingStepLeavesTheDatabaseUntouched) {
  auto admin = admin_connection();
  ASSERT_TRUE(admin);
  const std::vector<pg::Migration> broken{{"first", "CREATE TABLE a (x INTEGER)"},
                                          {"second", "CREATE TABLE b (x INTEGER); INSERT INTO missing VALUES (1)"}};
  auto migrated = pg::migrate(*admin, broken);
  ASSERT_FALSE(migrated);
  EXPECT_NE(migrated.error().message.find("migration 2 (second)"), std::string::npos) << migrated.error().message;
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM pg_tables WHERE schemaname = '" + schema_ + "'"), 0);
}

// ---------------------------------------------------------------------------------------
// Concurrent writers

TEST_F(PostgresLedgerTest, ConcurrentAppendsFromThreadsAndTwoInstancesAreEachStoredOnce) {
  constexpr int kThreadsPerInstance = 4;
  constexpr int kPerThread = 2500;
  constexpr int kInstances = 2;
  constexpr int kTotal = kInstances * kThreadsPerInstance * kPerThread;
  std::vector<std::atomic<int>> reported(kTotal);
  std::atomic<int> failures{0};
  std::chrono::duration<double> elapsed{};
  {
    std::vector<std::unique_ptr<Ledger>> instances;
    for (int i = 0; i < kInstances; ++i) {
      instances.push_back(open_or_die(url()));
      ASSERT_TRUE(instances.back());
    }
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < kInstances * kThreadsPerInstance; ++t) {
      threads.emplace_back([&, t] {
        Ledger& ledger = *instances[static_cast<std::size_t>(t / kThreadsPerInstance)];
        for (int i = 0; i < kPerThread; ++i) {
          const int index = t * kPerThread + i;
          CallRecord record = sample_record("r" + std::to_string(index), index, "gpt-4o");
          record.instance_id = "instance-" + std::to_string(t / kThreadsPerInstance);
          ledger.append(std::move(record), [&, index](Result<void> r) {
            reported[static_cast<std::size_t>(index)].fetch_add(1);
            if (!r) failures.fetch_add(1);
          });
        }
      });
    }
    for (auto& thread : threads) thread.join();
    for (auto& ledger : instances) ledger->close();
    elapsed = std::chrono::steady_clock::now() - start;
  }
  // A figure for the report, not a pass/fail criterion (speed goals live in benchmarks).
  std::cout << "[ figure ] " << kTotal << " records from " << kInstances << " instances in " << elapsed.count()
            << " s: " << static_cast<double>(kTotal) / elapsed.count() << " records/s\n";
  EXPECT_EQ(failures.load(), 0);
  for (std::size_t i = 0; i < reported.size(); ++i) {
    ASSERT_EQ(reported[i].load(), 1) << "record " << i;
  }
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM calls"), kTotal);
  EXPECT_EQ(scalar("SELECT COUNT(DISTINCT id) FROM calls"), kTotal) << "a record was stored twice";
  EXPECT_EQ(scalar("SELECT COUNT(DISTINCT instance_id) FROM calls"), kInstances);
}

TEST_F(PostgresLedgerTest, EachInstanceReportsTheCallsOfBoth) {
  auto first = open_or_die(url());
  auto second = open_or_die(url());
  ASSERT_TRUE(first && second);
  const auto records = random_records(200, 99);
  std::vector<CallRecord> written;
  for (std::size_t i = 0; i < records.size(); ++i) {
    Ledger& ledger = i % 2 == 0 ? *first : *second;
    ASSERT_TRUE(append_and_wait(ledger, records[i]));
    written.push_back(records[i]);
  }
  const StatsQuery query{std::nullopt, std::nullopt, 20};
  const StatsReport expected = brute_force_stats(written, query);
  expect_same_stats(expected, stats_or_die(*first, query));
  expect_same_stats(expected, stats_or_die(*second, query));
}

// ---------------------------------------------------------------------------------------
// Statistics against the brute-force reference (the same checks as for SQLite)

TEST_F(PostgresLedgerTest, StatsMatchBruteForceOverWindows) {
  auto records = random_records(3000, 20240601);
  LedgerOptions options;
  options.max_batch = 97;  // many transactions: write order (ties in recent_calls) must hold across them
  auto ledger = open_or_die(url(), options);
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
    const auto start = std::chrono::steady_clock::now();
    const StatsReport report = stats_or_die(*ledger, query);
    const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
    std::cout << "[ figure ] stats over " << report.total_calls << " calls: " << took.count() << " ms\n";
    expect_same_stats(brute_force_stats(records, query), report);
  }
}

// Two gateway instances share the ledger: every series bucket sums the roll-up rows of
// both (one snapshot) and equals the brute-force figures over all their records.
TEST_F(PostgresLedgerTest, SeriesOfTwoInstancesMatchesBruteForce) {
  auto records = random_records(2000, 5150, 3 * 86'400 * 4);
  for (std::size_t i = 0; i < records.size(); i += 2) records[i].instance_id = "instance-b";
  std::vector<CallRecord> first, second;
  for (const CallRecord& r : records) (r.instance_id == "instance-b" ? second : first).push_back(r);
  auto ledger_a = open_or_die(url());
  auto ledger_b = open_or_die(url());
  ASSERT_TRUE(ledger_a && ledger_b);
  append_all(*ledger_a, first);
  append_all(*ledger_b, second);
  records.push_back(CallRecord{});  // the two barrier records (timestamp 0)
  records.push_back(CallRecord{});

  constexpr std::int64_t t0 = 1'700'000'000, day = t0 / 86'400 * 86'400, week = t0 / 604'800 * 604'800;
  const std::vector<SeriesQuery> queries{
      {t0 / 60 * 60, t0 / 60 * 60 + 3'600, 60},
      {day, day + 4 * 86'400, 3'600},
      {day, day + 4 * 86'400, 21'600},
      {day, day + 4 * 86'400, 86'400},
      {week, week + 2 * 604'800, 604'800},
  };
  for (const SeriesQuery& query : queries) {
    const auto start = std::chrono::steady_clock::now();
    expect_series_matches_brute_force(records, *ledger_a, query);
    const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
    std::cout << "[ figure ] series step " << query.step << " checked in " << took.count() << " ms\n";
  }
}

// As in SQLite (ledger_series_test.cpp): a version-4 ledger with only its roll-ups left
// answers after the "series roll-ups" upgrade byte for byte as a ledger written today.
TEST_F(PostgresLedgerTest, UpgradedVersion4LedgerAnswersLikeOneWrittenToday) {
  auto records = random_records(2000, 6060, 3 * 86'400 * 4);
  for (std::size_t i = 0; i < records.size(); i += 3) records[i].instance_id = "instance-b";
  for (CallRecord& r : records) r.endpoint = kChatEndpoint;  // version 4 knew only chat calls
  const std::string fresh_schema = schema_ + "_fresh";
  ASSERT_TRUE(PgTestCluster::create_schema(fresh_schema));
  auto fresh = open_or_die(PgTestCluster::url_for(fresh_schema));
  ASSERT_TRUE(fresh);
  append_all(*fresh, records);
  records.push_back(CallRecord{});  // the barrier record (timestamp 0)
  {
    auto admin = admin_connection();
    ASSERT_TRUE(admin);
    ASSERT_TRUE(admin->exec("SET extra_float_digits = 3"));
    const auto migrations = pg::ledger_migrations();
    const auto step = static_cast<std::size_t>(
        std::find_if(migrations.begin(), migrations.end(),
                     [](const pg::Migration& m) { return m.description == "series roll-ups"; }) -
        migrations.begin());
    ASSERT_LT(step, migrations.size());
    ASSERT_TRUE(pg::migrate(*admin, migrations.first(step)));
    auto written = admin->exec("BEGIN; " + version4_rollups_sql(records) + "COMMIT;");
    ASSERT_TRUE(written) << written.error().message;
  }
  auto upgraded = open_or_die(url());
  ASSERT_TRUE(upgraded);
  constexpr std::int64_t t0 = 1'700'000'000, day = t0 / 86'400 * 86'400, week = t0 / 604'800 * 604'800;
  for (const SeriesQuery& query : {SeriesQuery{t0 / 60 * 60, t0 / 60 * 60 + 3'600, 60},
                                   SeriesQuery{day, day + 4 * 86'400, 3'600},
                                   SeriesQuery{day, day + 4 * 86'400, 21'600},
                                   SeriesQuery{day, day + 4 * 86'400, 86'400},
                                   SeriesQuery{week, week + 2 * 604'800, 604'800}}) {
    expect_series_matches_brute_force(records, *upgraded, query);
    auto expected = fresh->series(query);
    auto actual = upgraded->series(query);
    ASSERT_TRUE(expected && actual);
    EXPECT_EQ(render_series_json(*expected), render_series_json(*actual)) << "step " << query.step;
  }
  const auto whole = StatsQuery{std::nullopt, std::nullopt, 0};  // week rows only
  auto expected = fresh->stats(whole);
  auto actual = upgraded->stats(whole);
  ASSERT_TRUE(expected && actual);
  EXPECT_EQ(render_stats_json(*expected), render_stats_json(*actual));
}

// As in SQLite (ledger_endpoints_test.cpp): a ledger of the version before "endpoint
// roll-ups", with the records and roll-ups of one written today and its older raw chat
// records pruned, answers /stats's endpoint breakdown after the upgrade exactly as that one.
TEST_F(PostgresLedgerTest, UpgradedLedgerGetsTheEndpointBreakdown) {
  auto records = random_records(2000, 8080, 3 * 86'400 * 4);
  auto recent = random_records(300, 9090, 3'600 * 4);
  const double now = std::floor(unix_now());
  for (CallRecord& r : recent) {
    r.id += "-recent";
    r.timestamp += now - 3'600 - 1'700'000'000;
  }
  records.insert(records.end(), recent.begin(), recent.end());
  const std::string fresh_schema = schema_ + "_fresh";
  ASSERT_TRUE(PgTestCluster::create_schema(fresh_schema));
  auto fresh = open_or_die(PgTestCluster::url_for(fresh_schema));
  ASSERT_TRUE(fresh);
  append_all(*fresh, records);
  {
    auto admin = admin_connection();
    ASSERT_TRUE(admin);
    const auto migrations = pg::ledger_migrations();
    const auto step = static_cast<std::size_t>(
        std::find_if(migrations.begin(), migrations.end(),
                     [](const pg::Migration& m) { return m.description == "endpoint roll-ups"; }) -
        migrations.begin());
    ASSERT_LT(step, migrations.size());
    ASSERT_TRUE(pg::migrate(*admin, migrations.first(step)));
    auto copied = admin->exec(
        // The barrier record has no count, which that version cannot hold.
        "BEGIN; UPDATE " + fresh_schema + ".calls SET counted_prompt_tokens = 0 WHERE counted_prompt_tokens IS NULL; "
        "INSERT INTO calls OVERRIDING SYSTEM VALUE SELECT * FROM " + fresh_schema + ".calls; "
        "INSERT INTO rollups SELECT * FROM " + fresh_schema + ".rollups; "
        "INSERT INTO key_rollups SELECT * FROM " + fresh_schema + ".key_rollups; "
        "INSERT INTO latency_histograms SELECT * FROM " + fresh_schema + ".latency_histograms; "
        "DELETE FROM calls WHERE endpoint = 'chat' AND timestamp < 1700100000; COMMIT;");
    ASSERT_TRUE(copied) << copied.error().message;
  }
  auto upgraded = open_or_die(url());
  ASSERT_TRUE(upgraded);
  EXPECT_EQ(scalar("SELECT COUNT(DISTINCT endpoint) FROM endpoint_rollups"), 3);
  const double day = 1'700'006'400;
  for (const StatsQuery& query : {StatsQuery{std::nullopt, std::nullopt, 0}, StatsQuery{day, day + 86'400, 0},
                                  StatsQuery{now - 1'800, now - 60, 0}}) {
    auto expected = fresh->stats(query);
    auto actual = upgraded->stats(query);
    ASSERT_TRUE(expected && actual);
    EXPECT_EQ(render_stats_json(*expected), render_stats_json(*actual));
  }
}

TEST_F(PostgresLedgerTest, PercentilesUseNearestRank) {
  auto ledger = open_or_die(url());
  ASSERT_TRUE(ledger);
  std::vector<CallRecord> records;
  for (int i = 100; i >= 1; --i) records.push_back(sample_record("h" + std::to_string(i), i, "hundred"));
  for (std::size_t i = 0; i < 100; ++i) records[i].latency_ms = static_cast<double>(100 - i);
  for (double latency : {30.0, 10.0, 20.0}) {
    records.push_back(sample_record("t", 1, "three"));
    records.back().latency_ms = latency;
  }
  // 20 calls: 0.95 * 20 is not exactly 19 in binary floating point; the rank must still be 19.
  for (int i = 1; i <= 20; ++i) {
    records.push_back(sample_record("w", 1, "twenty"));
    records.back().latency_ms = i;
  }
  append_all(*ledger, records);

  const StatsReport report = stats_or_die(*ledger);
  const LatencySummary hundred = report.models.at("hundred").latency_ms;
  expect_same_percentile(50, hundred.p50, "p50");  // rank ceil(0.50 * 100) = 50
  expect_same_percentile(95, hundred.p95, "p95");
  expect_same_percentile(99, hundred.p99, "p99");
  EXPECT_DOUBLE_EQ(hundred.avg, 50.5);
  // Buckets holding one distinct latency answer exactly.
  const LatencySummary three = report.models.at("three").latency_ms;
  EXPECT_EQ(three.p50, 20);  // rank ceil(1.5) = 2
  EXPECT_EQ(three.p95, 30);  // rank ceil(2.85) = 3
  const LatencySummary twenty = report.models.at("twenty").latency_ms;
  expect_same_percentile(19, twenty.p95, "p95 of 20");
  expect_same_percentile(20, twenty.p99, "p99 of 20");
}

TEST_F(PostgresLedgerTest, UnpricedCallsAreCountedAndNeverCostZero) {
  auto ledger = open_or_die(url());
  ASSERT_TRUE(ledger);
  CallRecord priced = sample_record("p", 1, "gpt-4o-mini");
  priced.cost = Money{300};
  priced.baseline_cost = Money{1000};
  CallRecord unpriced = sample_record("u", 2, "mystery");
  unpriced.cost.reset();
  unpriced.baseline_cost = Money{4000};  // known baseline, unknown cost: no saving claimed
  CallRecord mixed_priced = sample_record("m1", 3, "half");
  mixed_priced.cost = Money{50};
  mixed_priced.baseline_cost.reset();
  CallRecord mixed_unpriced = sample_record("m2", 4, "half");
  mixed_unpriced.cost.reset();
  const std::vector<CallRecord> records{priced, unpriced, mixed_priced, mixed_unpriced};
  append_all(*ledger, records);

  const StatsQuery query{1, 5, 10};
  const StatsReport report = stats_or_die(*ledger, query);
  expect_same_stats(brute_force_stats(records, query), report);
  EXPECT_EQ(report.unpriced_calls, 2U);
  EXPECT_EQ(report.savings, Money{1000 - 300});
  EXPECT_FALSE(report.models.at("mystery").cost.has_value());
  EXPECT_EQ(report.models.at("half").cost, Money{50});
}

TEST_F(PostgresLedgerTest, CostSumsAreExact) {
  auto ledger = open_or_die(url());
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
}

// Roll-up sums are 64-bit pico-dollars (about $9.2M per day, instance, model, route and
// key): a batch that would overflow one is refused, kept for retry and reported by
// health(), never stored as a wrapped value.
TEST_F(PostgresLedgerTest, SumsBeyondSixtyFourBitsAreAnErrorNotAWrappedValue) {
  auto ledger = open_or_die(url());
  ASSERT_TRUE(ledger);
  for (int i = 0; i < 2; ++i) {
    CallRecord big = sample_record("big" + std::to_string(i), 1, "gpt-4o");
    big.cost = Money{std::numeric_limits<std::int64_t>::max() / 3 * 2};
    const auto written = append_and_wait(*ledger, big);
    if (i == 0) {
      ASSERT_TRUE(written);
    } else {
      ASSERT_FALSE(written);
      EXPECT_NE(written.error().message.find("range"), std::string::npos) << written.error().message;
    }
  }
  EXPECT_FALSE(ledger->health().healthy);
  // A writer holding a record it could not write answers a fold request at once, as
  // incomplete: /stats then says its totals may miss an acknowledged call (rollups_stale).
  const FoldOutcome folded = wait_for_fold(*ledger, std::chrono::seconds(10));
  EXPECT_FALSE(folded.complete);
  EXPECT_NE(folded.problem.find("not taking writes"), std::string::npos) << folded.problem;
  const auto report = ledger->stats({});
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->total_calls, 1U);  // the first call only, its cost exact
  EXPECT_EQ(report->total_cost, Money{std::numeric_limits<std::int64_t>::max() / 3 * 2});
}

// ---------------------------------------------------------------------------------------
// Failures: reconnection, health, credentials

TEST_F(PostgresLedgerTest, CutConnectionsAreReplacedWithoutLosingRecords) {
  auto ledger = open_or_die(url());
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(append_and_wait(*ledger, sample_record("before", 1, "gpt-4o")));
  ASSERT_EQ(stats_or_die(*ledger).total_calls, 1U);  // leaves a reader in the pool
  // Ends every other session of this role: the ledger's writer and its pooled reader.
  ASSERT_GE(scalar("SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE usename = current_user AND pid <> pg_backend_pid() AND application_name = 'turnout') t"),
            2);
  ASSERT_TRUE(append_and_wait(*ledger, sample_record("after", 2, "gpt-4o")));
  EXPECT_TRUE(ledger->health().healthy) << ledger->health().reason;
  EXPECT_EQ(stats_or_die(*ledger).total_calls, 2U);
}

TEST_F(PostgresLedgerTest, UnwritableTableMakesItUnhealthyUntilWritesSucceedAgain) {
  LedgerOptions options;
  options.retry_interval = std::chrono::milliseconds(20);
  auto ledger = open_or_die(url(), options);
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(append_and_wait(*ledger, sample_record("before", 1, "gpt-4o")));
  auto admin = admin_connection();
  ASSERT_TRUE(admin);
  ASSERT_TRUE(admin->exec("ALTER TABLE calls RENAME TO calls_away"));
  const auto failed = append_and_wait(*ledger, sample_record("during", 2, "gpt-4o"));
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().message.find(password()), std::string::npos) << failed.error().message;
  const LedgerHealth sick = ledger->health();
  EXPECT_FALSE(sick.healthy);
  EXPECT_NE(sick.reason.find("1 records waiting"), std::string::npos) << sick.reason;

  ASSERT_TRUE(admin->exec("ALTER TABLE calls_away RENAME TO calls"));
  ASSERT_TRUE(eventually([&] { return ledger->health().healthy; })) << ledger->health().reason;
  ledger->close();
  const auto rows = read_rows();
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[1].id, "during");
}

TEST_F(PostgresLedgerTest, PasswordsNeverAppearInErrors) {
  const std::string secret = password();
  // Right password, missing database: the message names the redacted URL.
  std::string wrong_database = base_url();
  wrong_database.replace(wrong_database.rfind('/'), std::string::npos, "/no_such_database");
  auto missing = open_ledger(wrong_database);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message.find(secret), std::string::npos) << missing.error().message;
  EXPECT_NE(missing.error().message.find("no_such_database"), std::string::npos) << missing.error().message;

  // Wrong password, in the userinfo and in the query.
  std::string wrong_password = base_url();
  wrong_password.replace(wrong_password.find(secret), secret.size(), "Wr0ngPassw0rd");
  for (const std::string& candidate : {wrong_password, wrong_password + "?password=An0therSecret"}) {
    auto refused = open_ledger(candidate);
    ASSERT_FALSE(refused);
    const std::string& message = refused.error().message;
    EXPECT_NE(message.find("password authentication failed"), std::string::npos) << message;
    for (const std::string_view leaked : {std::string_view("Wr0ngPassw0rd"), std::string_view("An0therSecret")}) {
      EXPECT_EQ(message.find(leaked), std::string::npos) << message;
    }
  }
}

TEST(PostgresScrub, MasksEveryOccurrence) {
  EXPECT_EQ(pg::scrub("a pw b pw", "pw"), "a *** b ***");
  EXPECT_EQ(pg::scrub("nothing", ""), "nothing");
}

}  // namespace
