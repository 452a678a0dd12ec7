// `turnout ledger export` (ledger/ledger_export.hpp): records written through the real
// ledger API are exported and parsed back, field by field, in JSON Lines (with simdjson,
// which also checks the output is valid UTF-8 JSON) and CSV (with an RFC 4180 reader written
// here). SQLite: every field, field order, write order, the since/until edges, CSV quoting,
// null money and ttft, invalid UTF-8, an empty ledger, buffer-sized exports, a missing file
// and a file that is not a ledger. PostgreSQL (a private cluster from
// scripts/pg-test-cluster.sh, skipped when the server binaries are not installed): every
// field, the window, an export spanning several cursor FETCHes, and passwords kept out of
// messages.
#include "ledger/ledger_export.hpp"
#include "ledger/ledger.hpp"
#include "ledger/postgres/connection.hpp"
#include "ledger_reference.hpp"
#include "pg_test_cluster.hpp"
#include "pricing/pricing.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace turnout;
using namespace turnout::ledger;
using namespace turnout::ledger::test;
using pricing::Money;
using turnout::test::PgTestCluster;

// The documented field set, in the documented order.
const std::vector<std::string> kExpectedFields{
    "id",                "timestamp",     "instance_id",     "client_key_id",     "requested_model",
    "model",             "route",         "counted_prompt_tokens", "prompt_tokens", "completion_tokens",
    "cached_tokens",     "usage_reported", "cost_usd",       "baseline_cost_usd", "latency_ms",
    "ttft_ms",           "status",        "error_type",      "attempts",          "stream",
    "endpoint",          "count_estimated", "count_partial",
};

// ---------------------------------------------------------------------------------------
// Reading the output back

// One exported field: strings unescaped, everything else as its literal text.
struct Field {
  std::string name;
  std::string text;
  bool is_null = false;    // JSON null; in CSV an empty field
  bool is_string = false;  // JSON only
};
using Row = std::vector<Field>;

// The fields of one JSON object in their order, numbers and literals as written.
Row parse_json_line(const std::string& line) {
  Row row;
  // The DOM parser checks the whole line (no trailing text, valid UTF-8); the On-Demand one
  // then gives the fields in order with each number's exact text.
  simdjson::dom::parser validator;
  const simdjson::error_code invalid = validator.parse(line).error();
  EXPECT_EQ(invalid, simdjson::SUCCESS) << simdjson::error_message(invalid) << ": " << line;
  try {
    simdjson::ondemand::parser parser;
    const simdjson::padded_string padded(line);
    simdjson::ondemand::document document = parser.iterate(padded);
    for (auto member : document.get_object()) {
      Field field;
      field.name = std::string(member.unescaped_key().value());
      simdjson::ondemand::value value = member.value();
      switch (value.type().value()) {
        case simdjson::ondemand::json_type::string:
          field.is_string = true;
          field.text = std::string(value.get_string().value());
          break;
        case simdjson::ondemand::json_type::null:
          field.is_null = true;
          field.text = "null";
          break;
        default:
          field.text = std::string(value.raw_json_token());
      }
      row.push_back(std::move(field));
    }
  } catch (const simdjson::simdjson_error& error) {
    ADD_FAILURE() << "not a JSON object (" << error.what() << "): " << line;
  }
  return row;
}

std::vector<Row> parse_jsonl(const std::string& text) {
  std::vector<Row> rows;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    rows.push_back(parse_json_line(line));
  }
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "the last line is not terminated";
  return rows;
}

// RFC 4180 records: fields separated by commas, records by "\n"; a quoted field may hold
// commas, line breaks and doubled quotes.
std::vector<std::vector<std::string>> parse_csv_records(const std::string& text) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      EXPECT_TRUE(field.empty()) << "a quote inside an unquoted field at byte " << i;
      quoted = true;
    } else if (c == ',') {
      record.push_back(std::move(field));
      field.clear();
    } else if (c == '\n') {
      record.push_back(std::move(field));
      field.clear();
      records.push_back(std::move(record));
      record.clear();
    } else {
      field += c;
    }
  }
  EXPECT_FALSE(quoted) << "unterminated quoted field";
  EXPECT_TRUE(field.empty() && record.empty()) << "the last record is not terminated";
  return records;
}

// The data rows, each field named by the header (which must be the documented one).
std::vector<Row> parse_csv(const std::string& text) {
  const auto records = parse_csv_records(text);
  EXPECT_FALSE(records.empty()) << "no header line";
  if (records.empty()) return {};
  EXPECT_EQ(records[0], kExpectedFields);
  std::vector<Row> rows;
  for (std::size_t r = 1; r < records.size(); ++r) {
    EXPECT_EQ(records[r].size(), kExpectedFields.size()) << "record " << r;
    Row row;
    for (std::size_t i = 0; i < records[r].size() && i < kExpectedFields.size(); ++i) {
      row.push_back(Field{kExpectedFields[i], records[r][i], records[r][i].empty(), false});
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<Row> parse_export(const std::string& text, ExportFormat format) {
  return format == ExportFormat::jsonl ? parse_jsonl(text) : parse_csv(text);
}

const Field& field_of(const Row& row, const std::string& name) {
  static const Field missing{"(missing)", "(missing)", false, false};
  for (const Field& field : row) {
    if (field.name == name) return field;
  }
  ADD_FAILURE() << "no field " << name;
  return missing;
}

double as_double(const Field& field) {
  double value = 0;
  const auto [end, error] = std::from_chars(field.text.data(), field.text.data() + field.text.size(), value);
  EXPECT_TRUE(error == std::errc{} && end == field.text.data() + field.text.size())
      << field.name << " is not a number: " << field.text;
  return value;
}

std::int64_t as_integer(const Field& field) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(field.text.data(), field.text.data() + field.text.size(), value);
  EXPECT_TRUE(error == std::errc{} && end == field.text.data() + field.text.size())
      << field.name << " is not an integer: " << field.text;
  return value;
}

void expect_text(const Row& row, const std::string& name, const std::string& expected, ExportFormat format) {
  const Field& field = field_of(row, name);
  EXPECT_EQ(field.text, expected) << name;
  if (format == ExportFormat::jsonl) {
    EXPECT_TRUE(field.is_string) << name << " must be a JSON string";
  }
}

void expect_count(const Row& row, const std::string& name, std::int64_t expected) {
  EXPECT_EQ(as_integer(field_of(row, name)), expected) << name;
}

// Doubles must come back bit for bit.
void expect_real(const Row& row, const std::string& name, const std::optional<double>& expected) {
  const Field& field = field_of(row, name);
  if (!expected) {
    EXPECT_TRUE(field.is_null) << name << " should be null, is " << field.text;
    return;
  }
  EXPECT_EQ(as_double(field), *expected) << name << " exported as " << field.text;
}

void expect_money(const Row& row, const std::string& name, const std::optional<Money>& expected) {
  const Field& field = field_of(row, name);
  if (!expected) {
    EXPECT_TRUE(field.is_null) << name << " should be null, is " << field.text;
    return;
  }
  EXPECT_FALSE(field.is_string) << name << " must be a JSON number";
  EXPECT_EQ(field.text, pricing::format_usd(*expected)) << name;
}

void expect_flag(const Row& row, const std::string& name, bool expected) {
  EXPECT_EQ(field_of(row, name).text, expected ? "true" : "false") << name;
}

// Every field of `row` against the record that was appended, and the field order.
void expect_exported(const CallRecord& expected, const Row& row, ExportFormat format) {
  std::vector<std::string> names;
  for (const Field& field : row) names.push_back(field.name);
  EXPECT_EQ(names, kExpectedFields);
  expect_text(row, "id", expected.id, format);
  expect_real(row, "timestamp", expected.timestamp);
  expect_text(row, "instance_id", expected.instance_id, format);
  expect_text(row, "client_key_id", expected.client_key_id, format);
  expect_text(row, "requested_model", expected.requested_model, format);
  expect_text(row, "model", expected.model, format);
  expect_text(row, "route", expected.route, format);
  if (expected.counted_prompt_tokens) {
    expect_count(row, "counted_prompt_tokens", static_cast<std::int64_t>(*expected.counted_prompt_tokens));
  } else {
    EXPECT_TRUE(field_of(row, "counted_prompt_tokens").is_null) << "counted_prompt_tokens should be null";
  }
  expect_count(row, "prompt_tokens", static_cast<std::int64_t>(expected.usage.prompt_tokens));
  expect_count(row, "completion_tokens", static_cast<std::int64_t>(expected.usage.completion_tokens));
  expect_count(row, "cached_tokens", static_cast<std::int64_t>(expected.usage.cached_tokens));
  expect_flag(row, "usage_reported", expected.usage_reported);
  expect_money(row, "cost_usd", expected.cost);
  expect_money(row, "baseline_cost_usd", expected.baseline_cost);
  expect_real(row, "latency_ms", expected.latency_ms);
  expect_real(row, "ttft_ms", expected.ttft_ms);
  expect_count(row, "status", expected.status);
  expect_text(row, "error_type", expected.error_type, format);
  expect_count(row, "attempts", expected.attempts);
  expect_flag(row, "stream", expected.stream);
  expect_text(row, "endpoint", expected.endpoint, format);
  expect_flag(row, "count_estimated", expected.count_estimated);
  expect_flag(row, "count_partial", expected.count_partial);
}

std::vector<std::string> exported_ids(const std::vector<Row>& rows) {
  std::vector<std::string> ids;
  for (const Row& row : rows) ids.push_back(field_of(row, "id").text);
  return ids;
}

// ---------------------------------------------------------------------------------------
// Records and ledgers

// Every field set, strings that need escaping in JSON and quoting in CSV, a cost beyond a
// double's exact range.
CallRecord full_record() {
  CallRecord r;
  r.id = "req-\"quoted\",comma-\\-tab\there-\nnewline-\r-ü-😀";
  r.timestamp = 1717171717.123456;
  r.instance_id = "host-1:8000";
  r.client_key_id = "team, \"a\"";
  r.requested_model = "auto";
  r.model = "acme/\"model\",v2\nline";
  r.route = "fallback:gpt-3.5-turbo";
  r.counted_prompt_tokens = 1234;
  r.usage = {1300, 456, 1024};
  r.usage_reported = true;
  r.cost = Money{987654321012};
  r.baseline_cost = Money{(std::int64_t{1} << 53) + 7};
  r.latency_ms = 345.678;
  r.ttft_ms = 12.25;
  r.status = 499;
  r.error_type = "client_closed";
  r.attempts = 3;
  r.stream = true;
  r.endpoint = "responses";
  r.count_estimated = true;
  r.count_partial = true;
  return r;
}

// Every optional unset, every string but the id empty.
CallRecord sparse_record() {
  CallRecord r;
  r.id = "req-sparse";
  r.timestamp = 0.1 + 0.2;  // a double with no short decimal form
  r.usage = {std::uint64_t{1} << 40, 0, 0};
  r.status = 502;
  return r;
}

void append_all(const std::string& url, const std::vector<CallRecord>& records) {
  auto ledger = open_or_die(url);
  ASSERT_TRUE(ledger);
  for (const CallRecord& record : records) {
    ledger->append(record, [](Result<void> written) { EXPECT_TRUE(written) << written.error().message; });
  }
  ledger->close();  // commits everything queued
}

struct ExportOutput {
  Result<std::uint64_t> count;
  std::string text;
};

ExportOutput run_export(const std::string& url, ExportFormat format, const ExportQuery& query = {}) {
  std::ostringstream out;
  auto count = export_ledger(url, query, format, out);
  return ExportOutput{std::move(count), out.str()};
}

// The records of `url` exported in `format`, parsed back; fails the test on an error.
std::vector<Row> export_rows(const std::string& url, ExportFormat format, const ExportQuery& query = {}) {
  const ExportOutput output = run_export(url, format, query);
  EXPECT_TRUE(output.count) << output.count.error().message;
  const auto rows = parse_export(output.text, format);
  if (output.count) {
    EXPECT_EQ(*output.count, rows.size()) << "the returned count";
  }
  return rows;
}

// Written in this order on purpose: write order is not timestamp order.
std::vector<CallRecord> mixed_records() {
  CallRecord late_written_early_stamped = sample_record("req-third", 1000.5, "gpt-4o-mini");
  late_written_early_stamped.cost.reset();  // unpriced
  late_written_early_stamped.ttft_ms = 0.001;
  return {full_record(), sparse_record(), late_written_early_stamped};
}

// Timestamps straddling the window edges of WindowEdges tests: since=200, until=300.
std::vector<CallRecord> window_records() {
  return {sample_record("before", 199.999, "m"), sample_record("at-since", 200, "m"),
          sample_record("inside", 250.25, "m"),  sample_record("just-before-until", 299.999, "m"),
          sample_record("at-until", 300, "m"),   sample_record("after", 301, "m")};
}

void expect_window_edges(const std::string& url) {
  using Ids = std::vector<std::string>;
  EXPECT_EQ(exported_ids(export_rows(url, ExportFormat::jsonl, {200.0, 300.0})),
            (Ids{"at-since", "inside", "just-before-until"}));
  EXPECT_EQ(exported_ids(export_rows(url, ExportFormat::csv, {200.0, 300.0})),
            (Ids{"at-since", "inside", "just-before-until"}));
  EXPECT_EQ(exported_ids(export_rows(url, ExportFormat::jsonl, {300.0, std::nullopt})), (Ids{"at-until", "after"}));
  EXPECT_EQ(exported_ids(export_rows(url, ExportFormat::jsonl, {std::nullopt, 200.0})), (Ids{"before"}));
  EXPECT_EQ(exported_ids(export_rows(url, ExportFormat::jsonl, {250.0, 250.0})), Ids{}) << "an empty window";
}

// ---------------------------------------------------------------------------------------
// SQLite

class SqliteExportTest : public ::testing::Test {
 protected:
  std::string url() const { return "sqlite:" + file().string(); }
  fs::path file() const { return dir_.path() / "ledger.db"; }

  TempDir dir_;
};

TEST_F(SqliteExportTest, JsonLinesHoldEveryFieldOfEveryRecordInWriteOrder) {
  const auto records = mixed_records();
  append_all(url(), records);
  const auto rows = export_rows(url(), ExportFormat::jsonl);
  ASSERT_EQ(rows.size(), records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    SCOPED_TRACE("record " + std::to_string(i));
    expect_exported(records[i], rows[i], ExportFormat::jsonl);
  }
}

TEST_F(SqliteExportTest, CsvHoldsEveryFieldOfEveryRecordInWriteOrder) {
  const auto records = mixed_records();
  append_all(url(), records);
  const auto rows = export_rows(url(), ExportFormat::csv);
  ASSERT_EQ(rows.size(), records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    SCOPED_TRACE("record " + std::to_string(i));
    expect_exported(records[i], rows[i], ExportFormat::csv);
  }
}

TEST_F(SqliteExportTest, CsvQuotesFieldsWithCommasQuotesAndLineBreaksOnly) {
  CallRecord record = sample_record("a,\"b\"\nc", 1, "plain-model");
  record.route = "has \"quote\"";
  record.client_key_id = "no-specials";
  record.cost.reset();
  append_all(url(), {record});
  const ExportOutput output = run_export(url(), ExportFormat::csv);
  ASSERT_TRUE(output.count) << output.count.error().message;
  const std::string data_line = output.text.substr(output.text.find('\n') + 1);
  EXPECT_EQ(data_line.rfind("\"a,\"\"b\"\"\nc\",1,instance-a,no-specials,auto,plain-model,\"has \"\"quote\"\"\",", 0),
            0U)
      << data_line;
  EXPECT_NE(data_line.find(",true,,0.000000005,"), std::string::npos) << "null cost is an empty field: " << data_line;
}

TEST_F(SqliteExportTest, WindowEdgesSinceInclusiveUntilExclusive) {
  append_all(url(), window_records());
  expect_window_edges(url());
}

TEST_F(SqliteExportTest, TextThatIsNotUtf8IsExportedWithReplacementCharacters) {
  append_all(url(), {sample_record("bad\xff-id-\xe2\x82", 1, "ok-\xc3\xa9")});
  const auto rows = export_rows(url(), ExportFormat::jsonl);  // simdjson rejects invalid UTF-8
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(field_of(rows[0], "id").text, "bad\uFFFD-id-\uFFFD");
  EXPECT_EQ(field_of(rows[0], "model").text, "ok-\u00e9");
}

TEST_F(SqliteExportTest, ManyRecordsAcrossSeveralOutputBuffersKeepTheirOrder) {
  constexpr int kRecords = 3000;  // well over the exporter's 64 KiB buffer in either format
  std::vector<CallRecord> records;
  for (int i = 0; i < kRecords; ++i) {
    // Timestamps descend: only write order gives the expected sequence.
    records.push_back(sample_record("bulk-" + std::to_string(i), 1e9 - i, "gpt-4o-mini"));
  }
  append_all(url(), records);
  for (const ExportFormat format : {ExportFormat::jsonl, ExportFormat::csv}) {
    const auto ids = exported_ids(export_rows(url(), format));
    ASSERT_EQ(ids.size(), records.size());
    for (int i = 0; i < kRecords; ++i) ASSERT_EQ(ids[i], records[i].id);
  }
}

TEST_F(SqliteExportTest, EmptyLedgerGivesNoLinesOrOnlyTheCsvHeader) {
  append_all(url(), {});
  const ExportOutput jsonl = run_export(url(), ExportFormat::jsonl);
  ASSERT_TRUE(jsonl.count) << jsonl.count.error().message;
  EXPECT_EQ(*jsonl.count, 0U);
  EXPECT_EQ(jsonl.text, "");
  const ExportOutput csv = run_export(url(), ExportFormat::csv);
  ASSERT_TRUE(csv.count) << csv.count.error().message;
  EXPECT_EQ(*csv.count, 0U);
  EXPECT_TRUE(parse_csv(csv.text).empty());
  EXPECT_EQ(std::count(csv.text.begin(), csv.text.end(), '\n'), 1) << csv.text;
}

TEST_F(SqliteExportTest, MissingFileIsAnErrorAndIsNotCreated) {
  const ExportOutput output = run_export(url(), ExportFormat::csv);
  ASSERT_FALSE(output.count);
  EXPECT_NE(output.count.error().message.find("does not exist"), std::string::npos) << output.count.error().message;
  EXPECT_NE(output.count.error().message.find(file().string()), std::string::npos) << output.count.error().message;
  EXPECT_EQ(output.text, "") << "not even a CSV header";
  EXPECT_FALSE(fs::exists(file()));
}

TEST_F(SqliteExportTest, FileThatIsNotALedgerIsAnErrorAndIsLeftUntouched) {
  std::ofstream(file()).close();  // an empty file: a valid SQLite database without tables
  const ExportOutput output = run_export(url(), ExportFormat::jsonl);
  ASSERT_FALSE(output.count);
  EXPECT_NE(output.count.error().message.find("calls"), std::string::npos) << output.count.error().message;
  EXPECT_EQ(fs::file_size(file()), 0U);
}

TEST(LedgerExport, InMemoryLedgerHasNothingToExport) {
  std::ostringstream out;
  auto count = export_ledger("sqlite::memory:", {}, ExportFormat::jsonl, out);
  ASSERT_FALSE(count);
  EXPECT_NE(count.error().message.find("memory"), std::string::npos) << count.error().message;
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

// One private cluster for all PostgreSQL tests; each test exports from its own schema.
class PostgresExportTest : public turnout::test::PgSchemaTest {
 protected:
  PostgresExportTest() : PgSchemaTest("x_") {}
};

TEST_F(PostgresExportTest, EveryFieldOfEveryRecordInWriteOrderInBothFormats) {
  const auto records = mixed_records();
  append_all(url(), records);
  for (const ExportFormat format : {ExportFormat::jsonl, ExportFormat::csv}) {
    const auto rows = export_rows(url(), format);
    ASSERT_EQ(rows.size(), records.size());
    for (std::size_t i = 0; i < records.size(); ++i) {
      SCOPED_TRACE("record " + std::to_string(i));
      expect_exported(records[i], rows[i], format);
    }
  }
}

TEST_F(PostgresExportTest, WindowEdgesSinceInclusiveUntilExclusive) {
  append_all(url(), window_records());
  expect_window_edges(url());
}

TEST_F(PostgresExportTest, ExportSpanningSeveralCursorFetchesKeepsWriteOrder) {
  constexpr int kRecords = 12'345;  // two full FETCHes of 5000 and a partial one
  std::vector<CallRecord> records;
  for (int i = 0; i < kRecords; ++i) {
    records.push_back(sample_record("bulk-" + std::to_string(i), 1e9 - i, "gpt-4o-mini"));
  }
  append_all(url(), records);
  const auto ids = exported_ids(export_rows(url(), ExportFormat::jsonl));
  ASSERT_EQ(ids.size(), records.size());
  for (int i = 0; i < kRecords; ++i) ASSERT_EQ(ids[i], records[i].id);
}

TEST_F(PostgresExportTest, EmptyLedgerGivesNoLines) {
  append_all(url(), {});
  const ExportOutput output = run_export(url(), ExportFormat::jsonl);
  ASSERT_TRUE(output.count) << output.count.error().message;
  EXPECT_EQ(*output.count, 0U);
  EXPECT_EQ(output.text, "");
}

TEST_F(PostgresExportTest, ErrorsNeverContainThePassword) {
  const std::string secret = password();
  ASSERT_FALSE(secret.empty());
  // The right password, but a schema without a ledger: the query fails.
  const ExportOutput no_table = run_export(url(), ExportFormat::jsonl);
  ASSERT_FALSE(no_table.count);
  EXPECT_EQ(no_table.count.error().message.find(secret), std::string::npos) << no_table.count.error().message;
  // A wrong password: the connection fails.
  std::string wrong = PgTestCluster::base_url();
  wrong.replace(wrong.find(secret), secret.size(), "not-the-password-42");
  const ExportOutput refused = run_export(wrong, ExportFormat::jsonl);
  ASSERT_FALSE(refused.count);
  EXPECT_EQ(refused.count.error().message.find("not-the-password-42"), std::string::npos)
      << refused.count.error().message;
  EXPECT_EQ(refused.count.error().message.find(secret), std::string::npos) << refused.count.error().message;
}

}  // namespace
