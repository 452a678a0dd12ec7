#include "ledger/ledger_export.hpp"

#include "common/json_text.hpp"
#include "ledger/ledger.hpp"
#include "ledger/ledger_url.hpp"
#include "ledger/pg_connection.hpp"
#include "ledger/sqlite_db.hpp"
#include "ledger/utf8_text.hpp"
#include "pricing/pricing.hpp"

#include <sqlite3.h>

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <string_view>

namespace turnout::ledger {
namespace {

// The columns read, in the order of the exported fields; SQLite and PostgreSQL name the
// `calls` columns alike. `Column` gives their positions in the result rows.
constexpr std::string_view kSelectColumns =
    "id, timestamp, instance_id, client_key_id, requested_model, model, route, counted_prompt_tokens, "
    "prompt_tokens, completion_tokens, cached_tokens, usage_reported, cost_pico, baseline_cost_pico, latency_ms, "
    "ttft_ms, status, error_type, attempts, stream";

enum Column : int {
  kId,
  kTimestamp,
  kInstanceId,
  kClientKeyId,
  kRequestedModel,
  kModel,
  kRoute,
  kCountedPromptTokens,
  kPromptTokens,
  kCompletionTokens,
  kCachedTokens,
  kUsageReported,
  kCostPico,
  kBaselineCostPico,
  kLatencyMs,
  kTtftMs,
  kStatus,
  kErrorType,
  kAttempts,
  kStream,
};

// The exported fields, in order: the one list that both formats and the CSV header follow.
template <class Visitor>
void visit_fields(const CallRecord& r, Visitor& visit) {
  visit("id", std::string_view(r.id));
  visit("timestamp", r.timestamp);
  visit("instance_id", std::string_view(r.instance_id));
  visit("client_key_id", std::string_view(r.client_key_id));
  visit("requested_model", std::string_view(r.requested_model));
  visit("model", std::string_view(r.model));
  visit("route", std::string_view(r.route));
  visit("counted_prompt_tokens", r.counted_prompt_tokens);
  visit("prompt_tokens", r.usage.prompt_tokens);
  visit("completion_tokens", r.usage.completion_tokens);
  visit("cached_tokens", r.usage.cached_tokens);
  visit("usage_reported", r.usage_reported);
  visit("cost_usd", r.cost);
  visit("baseline_cost_usd", r.baseline_cost);
  visit("latency_ms", r.latency_ms);
  visit("ttft_ms", r.ttft_ms);
  visit("status", r.status);
  visit("error_type", std::string_view(r.error_type));
  visit("attempts", r.attempts);
  visit("stream", r.stream);
}

// ---------------------------------------------------------------------------------------
// Values as text. Each appends the bare value (a JSON number or literal, which is also its
// CSV field) and returns true, or appends nothing and returns false for an absent value.

bool append_scalar(std::string& out, std::uint64_t value) {
  fmt::format_to(std::back_inserter(out), "{}", value);
  return true;
}

bool append_scalar(std::string& out, int value) {
  fmt::format_to(std::back_inserter(out), "{}", value);
  return true;
}

bool append_scalar(std::string& out, bool value) {
  out += value ? "true" : "false";
  return true;
}

// The shortest text that reads back as the same double. JSON has no NaN or infinity, and
// the ledger never stores one, so such a value is treated as absent.
bool append_scalar(std::string& out, double value) {
  if (!std::isfinite(value)) {
    return false;
  }
  fmt::format_to(std::back_inserter(out), "{}", value);
  return true;
}

bool append_scalar(std::string& out, const std::optional<double>& value) {
  return value && append_scalar(out, *value);
}

bool append_scalar(std::string& out, const std::optional<pricing::Money>& amount) {
  if (!amount) {
    return false;
  }
  out += pricing::format_usd(*amount);
  return true;
}

// A SQLite ledger stores client-supplied text (a request id) byte for byte, so it may not
// be UTF-8. The export is UTF-8 text, so such bytes become U+FFFD, as the PostgreSQL
// ledger stores them. Valid text (the usual case) is returned as is, without a copy.
std::string_view as_utf8(std::string_view text, std::string& scratch) {
  std::size_t valid_prefix = 0;
  while (valid_prefix < text.size()) {
    const Utf8Sequence sequence = next_utf8_sequence(text, valid_prefix);
    if (!sequence.valid) {
      break;
    }
    valid_prefix += sequence.length;
  }
  if (valid_prefix == text.size()) {
    return text;
  }
  scratch.assign(text.substr(0, valid_prefix));
  for (std::size_t i = valid_prefix; i < text.size();) {
    const Utf8Sequence sequence = next_utf8_sequence(text, i);
    if (sequence.valid) {
      scratch.append(text.substr(i, sequence.length));
    } else {
      scratch += "\xEF\xBF\xBD";
    }
    i += sequence.length;
  }
  return scratch;
}

// RFC 4180: a field holding a comma, a quote or a line break is quoted, its quotes doubled.
void append_csv_text(std::string& out, std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) {
    out += text;
    return;
  }
  out += '"';
  for (const char c : text) {
    if (c == '"') {
      out += '"';
    }
    out += c;
  }
  out += '"';
}

// ---------------------------------------------------------------------------------------
// Formats: a visitor per line.

class JsonLineWriter {
 public:
  JsonLineWriter(std::string& out, std::string& scratch) : out_(out), scratch_(scratch) {}

  void operator()(std::string_view name, std::string_view text) {
    key(name);
    append_json_string(out_, as_utf8(text, scratch_));
  }
  template <class Value>
  void operator()(std::string_view name, const Value& value) {
    key(name);
    if (!append_scalar(out_, value)) {
      out_ += "null";
    }
  }

 private:
  void key(std::string_view name) {
    out_ += first_ ? '{' : ',';
    first_ = false;
    append_json_string(out_, name);
    out_ += ':';
  }

  std::string& out_;
  std::string& scratch_;
  bool first_ = true;
};

class CsvRowWriter {
 public:
  CsvRowWriter(std::string& out, std::string& scratch) : out_(out), scratch_(scratch) {}

  void operator()(std::string_view /*name*/, std::string_view text) {
    separate();
    append_csv_text(out_, as_utf8(text, scratch_));
  }
  template <class Value>
  void operator()(std::string_view /*name*/, const Value& value) {
    separate();
    append_scalar(out_, value);  // an absent value is an empty field
  }

 private:
  void separate() {
    if (!first_) {
      out_ += ',';
    }
    first_ = false;
  }

  std::string& out_;
  std::string& scratch_;
  bool first_ = true;
};

class CsvHeaderWriter {
 public:
  explicit CsvHeaderWriter(std::string& out) : out_(out) {}

  template <class Value>
  void operator()(std::string_view name, const Value& /*value*/) {
    if (!first_) {
      out_ += ',';
    }
    first_ = false;
    out_ += name;
  }

 private:
  std::string& out_;
  bool first_ = true;
};

void append_json_line(std::string& out, const CallRecord& record, std::string& scratch) {
  JsonLineWriter line(out, scratch);
  visit_fields(record, line);
  out += "}\n";
}

void append_csv_line(std::string& out, const CallRecord& record, std::string& scratch) {
  CsvRowWriter row(out, scratch);
  visit_fields(record, row);
  out += '\n';
}

void append_csv_header(std::string& out) {
  CsvHeaderWriter header(out);
  visit_fields(CallRecord{}, header);  // only the names are used
  out += '\n';
}

// Formats records into a buffer and hands it to the stream in large writes. Nothing reaches
// the stream before the first buffer fills, so an export that fails at once (a missing
// file) writes nothing at all, not even the CSV header.
class RecordSink {
 public:
  RecordSink(ExportFormat format, std::ostream& out) : format_(format), out_(out) {
    buffer_.reserve(kFlushBytes + kFlushBytes / 4);
    if (format_ == ExportFormat::csv) {
      append_csv_header(buffer_);
    }
  }

  Result<void> write(const CallRecord& record) {
    if (format_ == ExportFormat::csv) {
      append_csv_line(buffer_, record, scratch_);
    } else {
      append_json_line(buffer_, record, scratch_);
    }
    ++written_;
    return buffer_.size() >= kFlushBytes ? flush() : Result<void>{};
  }

  // Writes out what is buffered; the number of records exported.
  Result<std::uint64_t> finish() {
    if (auto flushed = flush(); !flushed) {
      return flushed.error();
    }
    out_.flush();
    if (!out_) {
      return make_error("cannot write the export to the output");
    }
    return written_;
  }

 private:
  static constexpr std::size_t kFlushBytes = 64 * 1024;

  Result<void> flush() {
    out_.write(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    buffer_.clear();
    if (!out_) {
      return make_error("cannot write the export to the output");
    }
    return {};
  }

  ExportFormat format_;
  std::ostream& out_;
  std::string buffer_;
  std::string scratch_;  // as_utf8's repaired copies
  std::uint64_t written_ = 0;
};

// ---------------------------------------------------------------------------------------
// SQLite

// As long as the gateway's own wait: another process may hold a lock briefly (a
// checkpoint, WAL recovery).
constexpr int kSqliteBusyTimeoutMs = 5000;

// ORDER BY seq walks the table in rowid order, so rows stream out without a sort (and
// without the temporary storage one would need); the window is checked row by row.
const std::string& sqlite_select_sql() {
  static const std::string sql = fmt::format(
      "SELECT {} FROM calls WHERE (?1 IS NULL OR timestamp >= ?1) AND (?2 IS NULL OR timestamp < ?2) ORDER BY seq",
      kSelectColumns);
  return sql;
}

// Counts are stored as SQLite's signed 64-bit integers, never negative.
std::uint64_t count_column(const sqlite::Statement& row, Column column) {
  return static_cast<std::uint64_t>(row.column_int(column));
}

std::optional<pricing::Money> money_column(const sqlite::Statement& row, Column column) {
  if (auto pico = row.column_optional_int(column)) {
    return pricing::Money{*pico};
  }
  return std::nullopt;
}

void read_sqlite_row(const sqlite::Statement& row, CallRecord& r) {
  r.id = row.column_text(kId);
  r.timestamp = row.column_double(kTimestamp);
  r.instance_id = row.column_text(kInstanceId);
  r.client_key_id = row.column_text(kClientKeyId);
  r.requested_model = row.column_text(kRequestedModel);
  r.model = row.column_text(kModel);
  r.route = row.column_text(kRoute);
  r.counted_prompt_tokens = count_column(row, kCountedPromptTokens);
  r.usage.prompt_tokens = count_column(row, kPromptTokens);
  r.usage.completion_tokens = count_column(row, kCompletionTokens);
  r.usage.cached_tokens = count_column(row, kCachedTokens);
  r.usage_reported = row.column_int(kUsageReported) != 0;
  r.cost = money_column(row, kCostPico);
  r.baseline_cost = money_column(row, kBaselineCostPico);
  r.latency_ms = row.column_double(kLatencyMs);
  r.ttft_ms = row.column_optional_double(kTtftMs);
  r.status = static_cast<int>(row.column_int(kStatus));
  r.error_type = row.column_text(kErrorType);
  r.attempts = static_cast<int>(row.column_int(kAttempts));
  r.stream = row.column_int(kStream) != 0;
}

// Opens an existing ledger file for reading only: a mistyped path must be reported, not
// turned into a new empty database.
Result<sqlite::Database> open_sqlite_for_reading(const std::string& path) {
  std::error_code status_error;
  if (!std::filesystem::exists(path, status_error)) {
    return make_error(fmt::format("ledger database '{}' does not exist", path));
  }
  auto db = sqlite::Database::open(path, sqlite::Database::OpenMode::existing_only);
  if (!db) {
    return make_error(fmt::format("cannot open ledger database '{}': {}", path, db.error().message));
  }
  sqlite3_busy_timeout(db->handle(), kSqliteBusyTimeoutMs);
  if (auto read_only = db->exec("PRAGMA query_only = ON"); !read_only) {
    return make_error(fmt::format("ledger database '{}': {}", path, read_only.error().message));
  }
  return db;
}

// One statement, stepped row by row: it reads one consistent snapshot of the file (WAL
// mode), so records the gateway appends meanwhile are either all in or all out.
Result<std::uint64_t> export_sqlite(const std::string& path, const ExportQuery& query, RecordSink& sink) {
  auto db = open_sqlite_for_reading(path);
  if (!db) {
    return db.error();
  }
  auto rows = db->prepare(sqlite_select_sql());
  if (!rows) {
    return make_error(fmt::format("ledger database '{}': {}", path, rows.error().message));
  }
  rows->bind(1, query.since);
  rows->bind(2, query.until);
  CallRecord record;  // reused: its strings keep their capacity from row to row
  for (;;) {
    auto has_row = rows->step();
    if (!has_row) {
      return make_error(fmt::format("ledger database '{}': {}", path, has_row.error().message));
    }
    if (!*has_row) {
      break;
    }
    read_sqlite_row(*rows, record);
    if (auto written = sink.write(record); !written) {
      return written.error();
    }
  }
  return sink.finish();
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

constexpr int kFetchRows = 5000;

// As the gateway's sessions: float8 values come back in their shortest exact form, so
// timestamps and latencies export bit for bit, whatever the server's default.
constexpr std::string_view kSessionSetupSql = "SET extra_float_digits = 3";

// One snapshot for the whole export, however many FETCHes it takes; READ ONLY makes sure
// the export never writes.
constexpr std::string_view kBeginSql = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

// `seq` is the table's insertion key (an identity column), so ORDER BY seq is write order.
const std::string& pg_declare_sql() {
  static const std::string sql = fmt::format(
      "DECLARE ledger_export NO SCROLL CURSOR FOR SELECT {} FROM calls "
      "WHERE ($1::float8 IS NULL OR timestamp >= $1) AND ($2::float8 IS NULL OR timestamp < $2) ORDER BY seq",
      kSelectColumns);
  return sql;
}

const std::string& pg_fetch_sql() {
  static const std::string sql = fmt::format("FETCH FORWARD {} FROM ledger_export", kFetchRows);
  return sql;
}

// A window bound as a query parameter: the shortest text that reads back as the same
// double, so the server compares against exactly the bound that was asked for.
pg::Param window_param(const std::optional<double>& bound) {
  if (!bound) {
    return std::nullopt;
  }
  return fmt::format("{}", *bound);
}

// Reads one row of text-format values; a value that does not parse is an error rather
// than a silently wrong field.
class PgRowReader {
 public:
  PgRowReader(const pg::QueryResult& rows, int row) : rows_(rows), row_(row) {}

  std::string text(Column column) const { return std::string(rows_.text(row_, column)); }
  bool boolean(Column column) const { return rows_.text(row_, column) == "t"; }

  std::int64_t integer(Column column) {
    auto value = rows_.integer(row_, column);
    if (!value) {
      remember(value.error());
      return 0;
    }
    return *value;
  }
  double real(Column column) {
    auto value = rows_.real(row_, column);
    if (!value) {
      remember(value.error());
      return 0;
    }
    return *value;
  }
  std::optional<pricing::Money> money(Column column) {
    if (rows_.is_null(row_, column)) {
      return std::nullopt;
    }
    return pricing::Money{integer(column)};
  }
  std::optional<double> optional_real(Column column) {
    if (rows_.is_null(row_, column)) {
      return std::nullopt;
    }
    return real(column);
  }
  std::uint64_t count(Column column) { return static_cast<std::uint64_t>(integer(column)); }

  const std::optional<Error>& first_error() const { return error_; }

 private:
  void remember(Error error) {
    if (!error_) {
      error_ = std::move(error);
    }
  }

  const pg::QueryResult& rows_;
  int row_;
  std::optional<Error> error_;
};

Result<void> read_pg_row(const pg::QueryResult& rows, int row, CallRecord& r) {
  PgRowReader reader(rows, row);
  r.id = reader.text(kId);
  r.timestamp = reader.real(kTimestamp);
  r.instance_id = reader.text(kInstanceId);
  r.client_key_id = reader.text(kClientKeyId);
  r.requested_model = reader.text(kRequestedModel);
  r.model = reader.text(kModel);
  r.route = reader.text(kRoute);
  r.counted_prompt_tokens = reader.count(kCountedPromptTokens);
  r.usage.prompt_tokens = reader.count(kPromptTokens);
  r.usage.completion_tokens = reader.count(kCompletionTokens);
  r.usage.cached_tokens = reader.count(kCachedTokens);
  r.usage_reported = reader.boolean(kUsageReported);
  r.cost = reader.money(kCostPico);
  r.baseline_cost = reader.money(kBaselineCostPico);
  r.latency_ms = reader.real(kLatencyMs);
  r.ttft_ms = reader.optional_real(kTtftMs);
  r.status = static_cast<int>(reader.integer(kStatus));
  r.error_type = reader.text(kErrorType);
  r.attempts = static_cast<int>(reader.integer(kAttempts));
  r.stream = reader.boolean(kStream);
  if (reader.first_error()) {
    return *reader.first_error();
  }
  return {};
}

// A server-side cursor read FETCH by FETCH: at most kFetchRows records are in memory.
Result<std::uint64_t> export_postgresql(const std::string& url, const ExportQuery& query, RecordSink& sink) {
  auto target = pg::ConnectionTarget::parse(url);
  if (!target) {
    return target.error();
  }
  auto connection = pg::Connection::open(*target);
  if (!connection) {
    return connection.error();
  }
  if (auto setup = connection->exec(kSessionSetupSql); !setup) {
    return setup.error();
  }
  auto transaction = pg::Transaction::begin(*connection, kBeginSql);
  if (!transaction) {
    return transaction.error();
  }
  const std::array<pg::Param, 2> window{window_param(query.since), window_param(query.until)};
  if (auto declared = connection->query(pg_declare_sql(), window); !declared) {
    return declared.error();
  }
  CallRecord record;
  for (;;) {
    auto batch = connection->query(pg_fetch_sql());
    if (!batch) {
      return batch.error();
    }
    for (int row = 0; row < batch->rows(); ++row) {
      if (auto read = read_pg_row(*batch, row, record); !read) {
        return read.error();
      }
      if (auto written = sink.write(record); !written) {
        return written.error();
      }
    }
    if (batch->rows() < kFetchRows) {
      break;
    }
  }
  if (auto committed = transaction->commit(); !committed) {
    return committed.error();
  }
  return sink.finish();
}

}  // namespace

Result<std::uint64_t> export_ledger(const std::string& ledger_url, const ExportQuery& query, ExportFormat format,
                                    std::ostream& out) {
  auto parsed = parse_ledger_url(ledger_url);
  if (!parsed) {
    return parsed.error();
  }
  RecordSink sink(format, out);
  switch (parsed->kind) {
    case LedgerKind::sqlite_file:
      return export_sqlite(parsed->location, query, sink);
    case LedgerKind::sqlite_memory:
      return make_error("the ledger is sqlite::memory:, which lives only inside a running gateway; nothing to export");
    case LedgerKind::postgresql:
      return export_postgresql(parsed->location, query, sink);
  }
  return make_error("unknown ledger kind");
}

}  // namespace turnout::ledger
