#include "ledger/ledger_export.hpp"

#include "common/json_text.hpp"
#include "ledger/ledger.hpp"
#include "ledger/ledger_url.hpp"
#include "ledger/postgres/connection.hpp"
#include "ledger/record_scan.hpp"
#include "ledger/sqlite/db.hpp"
#include "common/utf8.hpp"
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
  visit("endpoint", std::string_view(r.endpoint));
  visit("count_estimated", r.count_estimated);
  visit("count_partial", r.count_partial);
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

bool append_scalar(std::string& out, const std::optional<std::uint64_t>& value) {
  return value && append_scalar(out, *value);
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
  explicit JsonLineWriter(std::string& out) : out_(out) {}

  void operator()(std::string_view name, std::string_view text) {
    key(name);
    append_json_string(out_, text);  // repairs invalid UTF-8 (common/json_text.hpp)
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
  bool first_ = true;
};

class CsvRowWriter {
 public:
  CsvRowWriter(std::string& out, std::string& scratch) : out_(out), scratch_(scratch) {}

  void operator()(std::string_view /*name*/, std::string_view text) {
    separate();
    // A SQLite ledger stores client-supplied text (a request id) byte for byte; the
    // export is UTF-8 text, so invalid bytes become U+FFFD, as the PostgreSQL ledger stores them.
    append_csv_text(out_, as_valid_utf8(text, scratch_));
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

// No scratch needed: append_json_string repairs invalid UTF-8 itself. (The parameter keeps
// the signature the CSV writer shares.)
void append_json_line(std::string& out, const CallRecord& record, std::string& /*scratch*/) {
  JsonLineWriter line(out);
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
  std::string scratch_;  // as_valid_utf8's repaired copies
  std::uint64_t written_ = 0;
};

// ---------------------------------------------------------------------------------------
// SQLite

// As long as the gateway's own wait: another process may hold a lock briefly (a
// checkpoint, WAL recovery).
constexpr int kSqliteBusyTimeoutMs = 5000;

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
  auto scanned = scan_records(*db, RecordWindow{query.since, query.until},
                              [&sink](const CallRecord& record) { return sink.write(record); });
  if (!scanned) {
    return make_error(fmt::format("ledger database '{}': {}", path, scanned.error().message));
  }
  return sink.finish();
}

// ---------------------------------------------------------------------------------------
// PostgreSQL


// As the gateway's sessions: float8 values come back in their shortest exact form, so
// timestamps and latencies export bit for bit, whatever the server's default.
constexpr std::string_view kSessionSetupSql = "SET extra_float_digits = 3";

// One snapshot for the whole export, however many FETCHes it takes; READ ONLY makes sure
// the export never writes.
constexpr std::string_view kBeginSql = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

// A server-side cursor read FETCH by FETCH: a bounded number of records in memory.
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
  auto scanned = scan_records(*connection, RecordWindow{query.since, query.until},
                              [&sink](const CallRecord& record) { return sink.write(record); });
  if (!scanned) {
    return scanned.error();
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
