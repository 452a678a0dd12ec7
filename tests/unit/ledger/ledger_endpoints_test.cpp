// /stats's breakdown by endpoint (chat, embeddings, responses) in the SQLite ledger
// (PostgreSQL: ledger_pg_test.cpp): it matches the brute-force figures over windows that
// mix roll-ups and raw rows, and a ledger from the version before "endpoint roll-ups" gets
// them on upgrade: built from its totals roll-ups (raw records may be gone) with the
// non-chat calls it still holds moved to their endpoint.
#include "common/clock.hpp"
#include "ledger/ledger.hpp"
#include "ledger/sqlite/call_row.hpp"
#include "ledger/sqlite/db.hpp"
#include "ledger/sqlite/schema.hpp"
#include "ledger_reference.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace {

using namespace turnout;
using namespace turnout::ledger;
using namespace turnout::ledger::test;

std::string sqlite_url(const fs::path& file) { return "sqlite:" + file.string(); }

std::size_t endpoint_rollups_step() {
  const auto migrations = sqlite::ledger_migrations();
  return static_cast<std::size_t>(
      std::find_if(migrations.begin(), migrations.end(),
                   [](const sqlite::Migration& m) { return m.description == "endpoint roll-ups"; }) -
      migrations.begin());
}

// Three days of records, the last ones within the hour (so second roll-ups exist too).
std::vector<CallRecord> records_of_every_endpoint() {
  auto records = random_records(3000, 31337, 3 * 86'400 * 4);
  auto recent = random_records(500, 4242, 3'600 * 4);
  const double shift = std::floor(unix_now()) - 3'600 - 1'700'000'000;
  for (CallRecord& r : recent) {
    r.id += "-recent";
    r.timestamp += shift;
  }
  records.insert(records.end(), recent.begin(), recent.end());
  return records;
}

TEST(LedgerEndpoints, BreakdownMatchesBruteForceOverWindows) {
  TempDir dir;
  auto records = records_of_every_endpoint();
  auto ledger = open_or_die(sqlite_url(dir.path() / "ledger.db"));
  ASSERT_TRUE(ledger);
  append_all(*ledger, records);
  records.push_back(CallRecord{});  // the barrier record
  const double t0 = 1'700'000'000, now = std::floor(unix_now());
  for (const StatsQuery& query : {StatsQuery{std::nullopt, std::nullopt, 0}, StatsQuery{t0 + 3'600.25, t0 + 90'000.5, 0},
                                  StatsQuery{now - 1'800.75, std::nullopt, 0}, StatsQuery{t0, now - 600.5, 0}}) {
    const StatsReport report = stats_or_die(*ledger, query);
    expect_same_stats(brute_force_stats(records, query), report);
  }
  const StatsReport whole = stats_or_die(*ledger, StatsQuery{std::nullopt, std::nullopt, 0});
  ASSERT_EQ(whole.endpoints.size(), 3U);
  EXPECT_GT(whole.endpoints.at("embeddings").calls, 0U);
  EXPECT_GT(whole.endpoints.at("responses").calls, 0U);
}

// The ledger of the version before: the same records and roll-ups as a ledger written
// today (copied from one), without the endpoint table. The older raw chat records are
// then pruned, as retention does, so the chat figures can only come from the roll-ups.
TEST(LedgerEndpoints, UpgradedLedgerAnswersLikeOneWrittenToday) {
  TempDir dir;
  auto records = records_of_every_endpoint();
  const fs::path fresh_file = dir.path() / "fresh.db";
  auto fresh = open_or_die(sqlite_url(fresh_file));
  ASSERT_TRUE(fresh);
  append_all(*fresh, records);
  records.push_back(CallRecord{});  // the barrier record
  // The SQLite roll-ups are folded after the calls commit; a stats read brings the file's
  // roll-ups up to every stored call before they are copied below.
  stats_or_die(*fresh, StatsQuery{std::nullopt, std::nullopt, 0});

  const fs::path old_file = dir.path() / "previous.db";
  {
    auto db = sqlite::Database::open(old_file.string());
    ASSERT_TRUE(db) << db.error().message;
    const std::size_t step = endpoint_rollups_step();
    ASSERT_LT(step, sqlite::ledger_migrations().size());
    ASSERT_TRUE(sqlite::migrate(*db, sqlite::ledger_migrations().first(step)));
    auto copied = db->exec("ATTACH DATABASE '" + fresh_file.string() + "' AS fresh; BEGIN; "
                           // The barrier record has no count, which that version cannot hold.
                           "UPDATE fresh.calls SET counted_prompt_tokens = 0 WHERE counted_prompt_tokens IS NULL; "
                           "INSERT INTO calls (seq, " + sqlite::call_row_columns() + ") SELECT seq, " +
                           sqlite::call_row_columns() + " FROM fresh.calls; "
                           "INSERT INTO rollups SELECT * FROM fresh.rollups; "
                           "INSERT INTO key_rollups SELECT * FROM fresh.key_rollups; "
                           "INSERT INTO latency_histograms SELECT * FROM fresh.latency_histograms; "
                           "DELETE FROM calls WHERE endpoint = 'chat' AND timestamp < 1700100000; "
                           "COMMIT; DETACH DATABASE fresh;");
    ASSERT_TRUE(copied) << copied.error().message;
    ASSERT_EQ(db->query_int("SELECT COUNT(*) FROM sqlite_master WHERE name = 'endpoint_rollups'").value(), 0);
  }
  auto upgraded = open_or_die(sqlite_url(old_file));
  ASSERT_TRUE(upgraded);
  const double day = 1'700'006'400, now = std::floor(unix_now());
  // Roll-up-only windows (whole weeks, days; whole seconds near now) answer byte for byte.
  for (const StatsQuery& query : {StatsQuery{std::nullopt, std::nullopt, 0}, StatsQuery{day, day + 86'400, 0},
                                  StatsQuery{now - 1'800, now - 60, 0}}) {
    auto expected = fresh->stats(query);
    auto actual = upgraded->stats(query);
    ASSERT_TRUE(expected && actual);
    EXPECT_EQ(render_stats_json(*expected), render_stats_json(*actual));
  }
  // Calls written after the upgrade add to the migrated rows.
  std::vector<CallRecord> more = random_records(200, 777, 4 * 60);
  for (CallRecord& r : more) {
    r.id += "-after";
    r.timestamp += now - 120 - 1'700'000'000;
  }
  append_all(*fresh, more);
  append_all(*upgraded, more);
  auto expected = fresh->stats(StatsQuery{std::nullopt, std::nullopt, 0});
  auto actual = upgraded->stats(StatsQuery{std::nullopt, std::nullopt, 0});
  ASSERT_TRUE(expected && actual);
  EXPECT_EQ(render_stats_json(*expected), render_stats_json(*actual));
}

}  // namespace
