// GET /stats/series in the ledger (SQLite; PostgreSQL: ledger_pg_test.cpp): every bucket
// equals a brute-force computation over the raw records of its window, for steps read from
// minute, hour, six-hour, day and week roll-ups; the series reads no raw record (it still
// answers after the raw rows are gone); a latency histogram is one row per bucket and
// model; a version-4 ledger (before "series roll-ups") answers after its upgrade exactly as
// one written today; invalid queries are refused with the parameter named.
#include "ledger/ledger.hpp"
#include "ledger/series_assembly.hpp"
#include "ledger/sqlite/db.hpp"
#include "ledger/sqlite/schema.hpp"
#include "ledger_reference.hpp"
#include "version4_rollups.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace {

using namespace turnout;
using namespace turnout::ledger;
using namespace turnout::ledger::test;
namespace json = boost::json;

constexpr std::int64_t kMinute = 60, kHour = 3'600, kDay = 86'400, kWeek = 604'800;
// random_records puts its records on a quarter-second grid from this time on.
constexpr std::int64_t kFirst = 1'700'000'000;

std::string sqlite_url(const fs::path& file) { return "sqlite:" + file.string(); }

// Records over three days, a few in the first minutes (so minute buckets have several).
std::vector<CallRecord> three_days_of_records() {
  auto records = random_records(3000, 90210, 3 * 86'400 * 4);
  auto dense = random_records(600, 4711, 20 * 60 * 4);
  for (CallRecord& r : dense) r.id += "-dense";
  records.insert(records.end(), dense.begin(), dense.end());
  return records;
}

std::vector<SeriesQuery> series_queries() {
  const std::int64_t day = kFirst / kDay * kDay;
  const std::int64_t week = kFirst / kWeek * kWeek;
  return {
      {kFirst / kMinute * kMinute, kFirst / kMinute * kMinute + 30 * kMinute, kMinute},  // minute roll-ups
      {kFirst / 300 * 300, kFirst / 300 * 300 + 2 * kHour, 300},                           // 5 minutes of minutes
      {kFirst / 5400 * 5400 - 5400, kFirst / 5400 * 5400 + 4 * 5400, 5400},              // 90 minutes: minute roll-ups
      {day, day + 4 * kDay, kHour},                                                         // hour roll-ups
      {day, day + 4 * kDay, 6 * kHour},
      {day - kDay, day + 5 * kDay, kDay},                                                   // day roll-ups
      {week, week + 2 * kWeek, kWeek},                                                      // week roll-ups
      {week, week + 2 * kWeek, 2 * kDay},
      {day + 30 * kDay, day + 31 * kDay, kHour},                                            // after every call
  };
}

TEST(LedgerSeries, EveryBucketMatchesBruteForce) {
  TempDir dir;
  auto records = three_days_of_records();
  auto ledger = open_or_die(sqlite_url(dir.path() / "ledger.db"));
  ASSERT_TRUE(ledger);
  append_all(*ledger, records);
  records.push_back(CallRecord{});  // the barrier record (timestamp 0)
  for (const SeriesQuery& query : series_queries()) expect_series_matches_brute_force(records, *ledger, query);
}

TEST(LedgerSeries, ReadsRollupsOnlyNeverRawRecords) {
  TempDir dir;
  const auto file = dir.path() / "ledger.db";
  auto records = three_days_of_records();
  auto ledger = open_or_die(sqlite_url(file));
  ASSERT_TRUE(ledger);
  append_all(*ledger, records);
  records.push_back(CallRecord{});
  // Retention folds the calls into the roll-ups before it deletes them; a read does too.
  stats_or_die(*ledger, StatsQuery{std::nullopt, std::nullopt, 0});
  {
    // Raw rows gone (as after retention): a series that read them would now come up short.
    auto db = sqlite::Database::open(file.string());
    ASSERT_TRUE(db) << db.error().message;
    ASSERT_TRUE(db->exec("DELETE FROM calls"));
  }
  for (const SeriesQuery& query : series_queries()) expect_series_matches_brute_force(records, *ledger, query);
}

// What keeps a long window cheap: one histogram row per (bucket, instance, model), however
// many latency cells it holds.
TEST(LedgerSeries, LatencyHistogramIsOneRowPerBucketAndModel) {
  TempDir dir;
  const auto file = dir.path() / "ledger.db";
  const auto records = three_days_of_records();
  auto ledger = open_or_die(sqlite_url(file));
  ASSERT_TRUE(ledger);
  append_all(*ledger, records);
  stats_or_die(*ledger, StatsQuery{std::nullopt, std::nullopt, 0});  // folds the roll-ups read from the file below
  for (const std::int64_t width : {kHour, 6 * kHour, kDay}) {
    std::set<std::tuple<std::int64_t, std::string, std::string>> histograms{{0, "", ""}};  // the barrier record's
    for (const CallRecord& r : records) histograms.emplace(bucket_start(r.timestamp, width), r.instance_id, r.model);
    auto db = sqlite::Database::open(file.string());
    ASSERT_TRUE(db) << db.error().message;
    EXPECT_EQ(db->query_int("SELECT COUNT(*) FROM latency_histograms WHERE width = " + std::to_string(width)).value(),
              static_cast<std::int64_t>(histograms.size()))
        << "width " << width;
  }
}

// The stored form of a histogram: every double reads back bit for bit (min and max are real
// latencies a percentile may be clamped to), and a malformed row is an error, not zeros.
TEST(LedgerSeries, HistogramCellsRoundTripExactlyAndMalformedTextIsAnError) {
  LatencyCells cells;
  merge_latency_cell(cells, 0, LatencyCell{1, 0.0, 1e-300});
  merge_latency_cell(cells, 161, LatencyCell{3, 1234.5678901234567, 1299.0000000000002});
  merge_latency_cell(cells, 161, LatencyCell{2, 1000.1, 1300.25});  // merged: counts add, range widens
  merge_latency_cell(cells, 641, LatencyCell{18'446'744'073'709'551'615ULL, 1.7976931348623157e308, 1.7976931348623157e308});
  LatencyCells decoded;
  ASSERT_TRUE(decode_latency_cells(encode_latency_cells(cells), decoded));
  ASSERT_EQ(decoded.size(), 3U);
  for (const auto& [bucket, cell] : cells) {
    EXPECT_EQ(decoded[bucket].count, cell.count);
    EXPECT_EQ(decoded[bucket].min_ms, cell.min_ms);
    EXPECT_EQ(decoded[bucket].max_ms, cell.max_ms);
  }
  EXPECT_EQ(decoded[161].count, 5U);
  EXPECT_EQ(decoded[161].min_ms, 1000.1);
  EXPECT_EQ(decoded[161].max_ms, 1300.25);
  for (const std::string bad : {"1,2,3", "1,2,3,4,5", "x,1,2,3", "1,0,2,3", "1,2,3,4  5,1,1,1", "1,-2,3,4"}) {
    LatencyCells into;
    auto result = decode_latency_cells(bad, into);
    ASSERT_FALSE(result) << bad;
    EXPECT_NE(result.error().message.find("malformed latency histogram cell"), std::string::npos);
  }
}

// The index of the "series roll-ups" step: the database before it is at version 4.
std::size_t series_rollups_step() {
  const auto migrations = sqlite::ledger_migrations();
  return static_cast<std::size_t>(
      std::find_if(migrations.begin(), migrations.end(),
                   [](const sqlite::Migration& m) { return m.description == "series roll-ups"; }) -
      migrations.begin());
}

// A version-4 ledger whose raw records are gone (retention) keeps only its roll-ups: the
// upgrade must build histogram rows and six-hour rows from them, and then every series and
// every roll-up-only /stats window answers byte for byte as a ledger written today does.
TEST(LedgerSeries, UpgradedVersion4LedgerAnswersLikeOneWrittenToday) {
  TempDir dir;
  auto records = three_days_of_records();
  for (CallRecord& r : records) r.endpoint = kChatEndpoint;  // version 4 knew only chat calls
  auto fresh = open_or_die(sqlite_url(dir.path() / "fresh.db"));
  ASSERT_TRUE(fresh);
  append_all(*fresh, records);
  records.push_back(CallRecord{});  // the barrier record (timestamp 0)

  const auto old_file = dir.path() / "version4.db";
  {
    auto db = sqlite::Database::open(old_file.string());
    ASSERT_TRUE(db) << db.error().message;
    const std::size_t step = series_rollups_step();
    ASSERT_LT(step, sqlite::ledger_migrations().size());
    ASSERT_TRUE(sqlite::migrate(*db, sqlite::ledger_migrations().first(step)));
    auto written = db->exec("BEGIN; " + version4_rollups_sql(records) + "COMMIT;");
    ASSERT_TRUE(written) << written.error().message;
  }
  auto upgraded = open_or_die(sqlite_url(old_file));
  ASSERT_TRUE(upgraded);
  for (const SeriesQuery& query : series_queries()) {
    expect_series_matches_brute_force(records, *upgraded, query);
    auto expected = fresh->series(query);
    auto actual = upgraded->series(query);
    ASSERT_TRUE(expected && actual);
    EXPECT_EQ(render_series_json(*expected), render_series_json(*actual)) << "step " << query.step;
  }
  const double day = static_cast<double>(kFirst / kDay * kDay);
  for (const StatsQuery& query : {StatsQuery{std::nullopt, std::nullopt, 0},                   // week rows
                                  StatsQuery{day + 6 * kHour, day + 30 * kHour, 0},           // six-hour rows
                                  StatsQuery{day, day + 2 * kDay, 0}}) {                      // day rows
    auto expected = fresh->stats(query);
    auto actual = upgraded->stats(query);
    ASSERT_TRUE(expected && actual);
    EXPECT_EQ(render_stats_json(*expected), render_stats_json(*actual));
  }
}

TEST(LedgerSeries, InvalidQueriesAreRefusedNamingTheParameter) {
  const auto param_of = [](SeriesQuery query) {
    auto problem = series_query_problem(query);
    return problem ? problem->param : std::string("none");
  };
  EXPECT_EQ(param_of({0, 3600, 60}), "none");
  EXPECT_EQ(param_of({0, 3600, 0}), "step");
  EXPECT_EQ(param_of({0, 3600, 90}), "step");    // not whole minutes
  EXPECT_EQ(param_of({0, 3600, -60}), "step");
  EXPECT_EQ(param_of({30, 3600, 60}), "since");  // not on a step boundary
  EXPECT_EQ(param_of({0, 3630, 60}), "until");
  EXPECT_EQ(param_of({3600, 3600, 60}), "until");
  EXPECT_EQ(param_of({0, (kMaxSeriesBuckets + 1) * 60, 60}), "step");  // too many buckets
  // Few buckets, each read from too many minute roll-ups (a step that is not whole hours).
  EXPECT_EQ(param_of({0, 1'000 * (kDay + 60), kDay + 60}), "step");

  TempDir dir;
  auto ledger = open_or_die(sqlite_url(dir.path() / "ledger.db"));
  ASSERT_TRUE(ledger);
  auto refused = ledger->series(SeriesQuery{30, 3600, 60});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("since"), std::string::npos);
}

TEST(LedgerSeries, ReadWidthIsTheCoarsestRollupDividingTheStep) {
  EXPECT_EQ(series_read_width(60), kMinute);
  EXPECT_EQ(series_read_width(300), kMinute);
  EXPECT_EQ(series_read_width(5400), kMinute);
  EXPECT_EQ(series_read_width(kHour), kHour);
  EXPECT_EQ(series_read_width(6 * kHour), 6 * kHour);
  EXPECT_EQ(series_read_width(18 * kHour), 6 * kHour);
  EXPECT_EQ(series_read_width(kDay), kDay);
  EXPECT_EQ(series_read_width(2 * kDay), kDay);
  EXPECT_EQ(series_read_width(kWeek), kWeek);
  EXPECT_EQ(series_read_width(2 * kWeek), kWeek);
}

TEST(LedgerSeriesJson, BucketsCarryStartAndExactFigures) {
  SeriesReport report;
  report.query = {1'700'000'040, 1'700'000'160, 60};
  StatsReport first;
  first.total_calls = 2;
  first.total_cost = pricing::Money{123'456'789'012'345};  // $123.456789012345: beyond a double's digits
  first.savings = pricing::Money{-5};
  first.unpriced_calls = 1;
  first.routes["<script>alert(1)</script>"] = 2;
  first.models["m"].calls = 2;
  first.models["m"].prompt_tokens = 7;
  first.models["m"].completion_tokens = 3;
  report.buckets = {first, StatsReport{}};
  const std::string text = render_series_json(report);
  EXPECT_NE(text.find("\"total_cost_usd\":123.456789012345"), std::string::npos) << text;
  EXPECT_NE(text.find("\"savings_usd\":-0.000000000005"), std::string::npos) << text;
  const json::object body = json::parse(text).as_object();
  EXPECT_EQ(body.at("object").as_string(), "stats.series");
  EXPECT_EQ(body.at("since").to_number<std::int64_t>(), 1'700'000'040);
  EXPECT_EQ(body.at("until").to_number<std::int64_t>(), 1'700'000'160);
  EXPECT_EQ(body.at("step").to_number<std::int64_t>(), 60);
  const json::array& buckets = body.at("buckets").as_array();
  ASSERT_EQ(buckets.size(), 2u);
  const json::object& bucket = buckets[0].as_object();
  EXPECT_EQ(bucket.at("start").to_number<std::int64_t>(), 1'700'000'040);
  EXPECT_EQ(buckets[1].as_object().at("start").to_number<std::int64_t>(), 1'700'000'100);
  EXPECT_EQ(bucket.at("total_calls").to_number<std::int64_t>(), 2);
  EXPECT_EQ(bucket.at("unpriced_calls").to_number<std::int64_t>(), 1);
  EXPECT_EQ(bucket.at("prompt_tokens").to_number<std::int64_t>(), 7);
  EXPECT_EQ(bucket.at("completion_tokens").to_number<std::int64_t>(), 3);
  EXPECT_EQ(bucket.at("routes").as_object().at("<script>alert(1)</script>").to_number<std::int64_t>(), 2);
  for (const char* field : {"latency_ms", "models", "keys", "baseline_cost_usd", "errors", "avg_latency_ms"})
    EXPECT_TRUE(bucket.contains(field)) << field;
  EXPECT_FALSE(bucket.contains("recent_calls"));
}

}  // namespace
