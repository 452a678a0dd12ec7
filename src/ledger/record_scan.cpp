#include "ledger/record_scan.hpp"

#include "ledger/sqlite/call_row.hpp"

#include <fmt/format.h>

#include <array>
#include <string>
#include <string_view>

namespace turnout::ledger {
namespace {

// Every column of a record, in CallRecord's order; SQLite and PostgreSQL name the
// `calls` columns alike. `Column` gives their positions in the result rows.
constexpr std::string_view kSelectColumns =
    "id, timestamp, instance_id, client_key_id, requested_model, model, route, counted_prompt_tokens, "
    "prompt_tokens, completion_tokens, cached_tokens, usage_reported, cost_pico, baseline_cost_pico, latency_ms, "
    "ttft_ms, status, error_type, attempts, stream, endpoint, count_estimated, count_partial";

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
  kEndpoint,
  kCountEstimated,
  kCountPartial,
};

// The roll-up fold reads rows back through this list, not call_row.cpp's: a column added
// there and not here would reach the fold as its default. The names and order are checked
// by a unit test (record_scan_columns()); the count here, at compile time.
static_assert(kCountPartial + 1 == sqlite::kCallRowColumnCount - 1,
              "record_scan.cpp reads every call-row column but record_key (sqlite/call_row.cpp)");

// ---------------------------------------------------------------------------------------
// SQLite

// ORDER BY seq walks the table in rowid order, so rows stream out without a sort (and
// without the temporary storage one would need); the window is checked row by row.
const std::string& sqlite_select_sql() {
  static const std::string sql = fmt::format(
      "SELECT {} FROM calls WHERE (?1 IS NULL OR timestamp >= ?1) AND (?2 IS NULL OR timestamp < ?2) ORDER BY seq",
      kSelectColumns);
  return sql;
}

// Reads one row of a SQLite statement, with the same calls as PgRowReader.
class SqliteRowReader {
 public:
  explicit SqliteRowReader(const sqlite::Statement& row) : row_(row) {}

  std::string text(Column column) const { return row_.column_text(column); }
  bool boolean(Column column) const { return row_.column_int(column) != 0; }
  std::int64_t integer(Column column) const { return row_.column_int(column); }
  double real(Column column) const { return row_.column_double(column); }
  std::optional<pricing::Money> money(Column column) const {
    if (auto pico = row_.column_optional_int(column)) {
      return pricing::Money{*pico};
    }
    return std::nullopt;
  }
  std::optional<double> optional_real(Column column) const { return row_.column_optional_double(column); }
  // Counts are stored as signed 64-bit integers, never negative.
  std::uint64_t count(Column column) const { return static_cast<std::uint64_t>(integer(column)); }
  std::optional<std::uint64_t> optional_count(Column column) const {
    if (auto value = row_.column_optional_int(column)) return static_cast<std::uint64_t>(*value);
    return std::nullopt;
  }

 private:
  const sqlite::Statement& row_;
};

// ---------------------------------------------------------------------------------------
// PostgreSQL

constexpr int kFetchRows = 5000;

// `seq` is the table's insertion key (an identity column), so ORDER BY seq is write order.
const std::string& pg_declare_sql() {
  static const std::string sql = fmt::format(
      "DECLARE call_records NO SCROLL CURSOR FOR SELECT {} FROM calls "
      "WHERE ($1::float8 IS NULL OR timestamp >= $1) AND ($2::float8 IS NULL OR timestamp < $2) ORDER BY seq",
      kSelectColumns);
  return sql;
}

const std::string& pg_fetch_sql() {
  static const std::string sql = fmt::format("FETCH FORWARD {} FROM call_records", kFetchRows);
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
  std::optional<std::uint64_t> optional_count(Column column) {
    if (rows_.is_null(row_, column)) return std::nullopt;
    return count(column);
  }

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

// The one mapping from result columns to a record's fields, for either row reader.
template <class RowReader>
void fill_record(RowReader& reader, CallRecord& r) {
  r.id = reader.text(kId);
  r.timestamp = reader.real(kTimestamp);
  r.instance_id = reader.text(kInstanceId);
  r.client_key_id = reader.text(kClientKeyId);
  r.requested_model = reader.text(kRequestedModel);
  r.model = reader.text(kModel);
  r.route = reader.text(kRoute);
  r.counted_prompt_tokens = reader.optional_count(kCountedPromptTokens);
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
  r.endpoint = reader.text(kEndpoint);
  r.count_estimated = reader.boolean(kCountEstimated);
  r.count_partial = reader.boolean(kCountPartial);
}

void read_sqlite_row(const sqlite::Statement& row, CallRecord& r) {
  SqliteRowReader reader(row);
  fill_record(reader, r);
}

Result<void> read_pg_row(const pg::QueryResult& rows, int row, CallRecord& r) {
  PgRowReader reader(rows, row);
  fill_record(reader, r);
  if (reader.first_error()) {
    return *reader.first_error();
  }
  return {};
}

Result<void> visit_sqlite_rows(sqlite::Statement& rows, const RecordVisitor& visit) {
  CallRecord record;  // reused: its strings keep their capacity from row to row
  for (;;) {
    auto has_row = rows.step();
    if (!has_row) {
      return has_row.error();
    }
    if (!*has_row) {
      return {};
    }
    read_sqlite_row(rows, record);
    if (auto visited = visit(record); !visited) {
      return visited.error();
    }
  }
}

}  // namespace

std::string_view record_scan_columns() { return kSelectColumns; }

Result<void> scan_records(sqlite::Database& db, const RecordWindow& window, const RecordVisitor& visit) {
  auto rows = db.prepare(sqlite_select_sql());
  if (!rows) {
    return rows.error();
  }
  rows->bind(1, window.since);
  rows->bind(2, window.until);
  return visit_sqlite_rows(*rows, visit);
}

Result<void> scan_records_by_seq(sqlite::Database& db, std::int64_t after_seq, std::int64_t through_seq,
                                 const RecordVisitor& visit) {
  static const std::string sql =
      fmt::format("SELECT {} FROM calls WHERE seq > ?1 AND seq <= ?2 AND counted_by_fold = 1 ORDER BY seq",
                  kSelectColumns);
  auto rows = db.cached(sql);
  if (!rows) {
    return rows.error();
  }
  (*rows)->bind(1, after_seq);
  (*rows)->bind(2, through_seq);
  Result<void> visited = visit_sqlite_rows(**rows, visit);
  (*rows)->reset();
  return visited;
}

Result<void> scan_records(pg::Connection& connection, const RecordWindow& window, const RecordVisitor& visit) {
  const std::array<pg::Param, 2> bounds{window_param(window.since), window_param(window.until)};
  if (auto declared = connection.query(pg_declare_sql(), bounds); !declared) {
    return declared.error();
  }
  CallRecord record;
  for (;;) {
    auto batch = connection.query(pg_fetch_sql());
    if (!batch) {
      return batch.error();
    }
    for (int row = 0; row < batch->rows(); ++row) {
      if (auto read = read_pg_row(*batch, row, record); !read) {
        return read.error();
      }
      if (auto visited = visit(record); !visited) {
        return visited.error();
      }
    }
    if (batch->rows() < kFetchRows) {
      break;
    }
  }
  return connection.exec("CLOSE call_records");
}

}  // namespace turnout::ledger
