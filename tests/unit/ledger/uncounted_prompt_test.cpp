// calls.counted_prompt_tokens may be NULL (issue 16: the served model's own count is taken
// only when something needs it). A SQLite ledger and a spool from before the migration are
// upgraded with their rows, rowids and indexes kept; an uncounted record is NULL in the
// table, null in /stats's recent calls and in the export, and survives the spool.
#include "ledger/ledger.hpp"
#include "ledger/ledger_export.hpp"
#include "ledger/sqlite/db.hpp"
#include "ledger/sqlite/schema.hpp"
#include "ledger/spool/spool.hpp"
#include "legacy_spool.hpp"
#include "ledger_reference.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace turnout;
using namespace turnout::ledger;
using namespace turnout::ledger::test;
using turnout::test::write_legacy_spool;

std::string sqlite_url(const fs::path& file) { return "sqlite:" + file.string(); }

std::size_t uncounted_step() {
  const auto migrations = sqlite::ledger_migrations();
  return static_cast<std::size_t>(
      std::find_if(migrations.begin(), migrations.end(),
                   [](const sqlite::Migration& m) { return m.description == "uncounted served prompts"; }) -
      migrations.begin());
}

CallRecord uncounted(std::string id, double timestamp) {
  CallRecord r = sample_record(std::move(id), timestamp, "gpt-4o-mini");
  r.counted_prompt_tokens = std::nullopt;
  return r;
}

std::string exported_jsonl(const fs::path& file) {
  std::ostringstream out;
  auto written = export_ledger(sqlite_url(file), ExportQuery{}, ExportFormat::jsonl, out);
  EXPECT_TRUE(written) << (written ? "" : written.error().message);
  return out.str();
}

TEST(UncountedPrompt, ALedgerFromTheVersionBeforeIsUpgradedWithItsRowsAndIndexes) {
  TempDir dir;
  const fs::path file = dir.path() / "previous.db";
  {
    auto db = sqlite::Database::open(file.string());
    ASSERT_TRUE(db) << db.error().message;
    const std::size_t step = uncounted_step();
    ASSERT_LT(step, sqlite::ledger_migrations().size());
    ASSERT_TRUE(sqlite::migrate(*db, sqlite::ledger_migrations().first(step)));
    ASSERT_TRUE(db->exec(
        "INSERT INTO calls (seq, record_key, id, timestamp, instance_id, client_key_id, requested_model, model, "
        "route, counted_prompt_tokens, prompt_tokens, completion_tokens, cached_tokens, usage_reported, latency_ms, "
        "status, error_type, attempts, stream, endpoint) VALUES "
        "(7, 'k7', 'old', 1700000000.5, 'host', '', 'auto', 'gpt-4o', 'complex', 4321, 4300, 5, 0, 1, 12.5, 200, "
        "'', 1, 0, 'chat')"));
    // The constraint this migration removes is there before it.
    EXPECT_FALSE(db->exec(
        "INSERT INTO calls (record_key, id, timestamp, instance_id, client_key_id, requested_model, model, route, "
        "counted_prompt_tokens, prompt_tokens, completion_tokens, cached_tokens, usage_reported, latency_ms, status, "
        "error_type, attempts, stream) VALUES ('k8', 'x', 1, '', '', '', '', '', NULL, 0, 0, 0, 0, 0, 200, '', 1, 0)"));
  }
  {
    auto upgraded = open_or_die(sqlite_url(file));
    ASSERT_TRUE(upgraded);
    ASSERT_TRUE(append_and_wait(*upgraded, uncounted("new", 1700000100.25)));
    const StatsReport report = stats_or_die(*upgraded, StatsQuery{std::nullopt, std::nullopt, 10});
    ASSERT_EQ(report.recent_calls.size(), 2U);
    EXPECT_EQ(report.recent_calls[0].counted_prompt_tokens, 4321U);
    EXPECT_EQ(report.recent_calls[1].counted_prompt_tokens, std::nullopt);
  }
  auto db = sqlite::Database::open(file.string());
  ASSERT_TRUE(db);
  EXPECT_EQ(db->query_int("SELECT seq FROM calls WHERE id = 'old'").value(), 7);
  EXPECT_EQ(db->query_int("SELECT counted_prompt_tokens FROM calls WHERE id = 'old'").value(), 4321);
  EXPECT_EQ(db->query_int("SELECT COUNT(*) FROM calls WHERE id = 'new' AND counted_prompt_tokens IS NULL").value(), 1);
  // (calls_id too came through the rebuild; the later "request ids not indexed" drops it.)
  EXPECT_EQ(db->query_text("SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_schema WHERE type = 'index' "
                           "AND tbl_name = 'calls' AND sql IS NOT NULL ORDER BY name)")
                .value(),
            "calls_timestamp");
  EXPECT_EQ(db->query_int("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'calls_rebuilt'").value(), 0);

  const std::string lines = exported_jsonl(file);
  EXPECT_NE(lines.find(R"("id":"old",)"), std::string::npos) << lines;
  EXPECT_NE(lines.find(R"("counted_prompt_tokens":4321,)"), std::string::npos) << lines;
  EXPECT_NE(lines.find(R"("counted_prompt_tokens":null,)"), std::string::npos) << lines;
}

TEST(UncountedPrompt, AnUncountedRecordIsNullInTheCsvExport) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  {
    auto ledger = open_or_die(sqlite_url(file));
    ASSERT_TRUE(ledger);
    ASSERT_TRUE(append_and_wait(*ledger, uncounted("u", 1700000000)));
  }
  std::ostringstream out;
  ASSERT_TRUE(export_ledger(sqlite_url(file), ExportQuery{}, ExportFormat::csv, out));
  const std::string csv = out.str();
  // id,timestamp,instance_id,client_key_id,requested_model,model,route,counted_prompt_tokens,...
  const std::size_t row = csv.find("\nu,");
  ASSERT_NE(row, std::string::npos) << csv;
  std::size_t field = row + 1;
  for (int comma = 0; comma < 7; ++comma) field = csv.find(',', field) + 1;
  EXPECT_EQ(csv[field], ',') << csv;  // empty: absent
}

TEST(UncountedPrompt, AFormatTwoSpoolIsUpgradedAndKeepsUncountedRecords) {
  TempDir dir;
  const fs::path file = dir.path() / "spool.db";
  ASSERT_TRUE(write_legacy_spool(file.string(), 2,
                                 "(3, 'k1', 'req-old', 1717171717.5, 'host-1', '', 'auto', 'gpt-4o-mini', 'medium', "
                                 "1212, 1200, 5, 0, 1, 42, NULL, 10.5, NULL, 200, '', 1, 0, 'chat', 0, 0, 'h1')"));
  Spool spool(file.string(), 10);
  ASSERT_TRUE(spool.open_existing());
  EXPECT_EQ(spool.size(), 1U);
  const CallRecord fresh = uncounted("req-new", 1717171800.0);
  ASSERT_TRUE(spool.store(std::vector<KeyedRecord>{{"k2", fresh}}));
  auto oldest = spool.oldest(10);
  ASSERT_TRUE(oldest);
  ASSERT_EQ(oldest->records.size(), 2U);
  EXPECT_EQ(oldest->records[0].record.id, "req-old");
  EXPECT_EQ(oldest->records[0].record.counted_prompt_tokens, 1212U);
  EXPECT_EQ(oldest->records[0].record.hold_id, "h1");
  expect_same_record(fresh, oldest->records[1].record);
  EXPECT_EQ(oldest->records[1].record.counted_prompt_tokens, std::nullopt);
}

}  // namespace
