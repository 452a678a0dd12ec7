#include "ledger/sqlite/db.hpp"

#include <sqlite3.h>

#include <fmt/format.h>

namespace turnout::ledger::sqlite {
namespace {

Error error_from(sqlite3* db, std::string_view what, int code) {
  return make_error(fmt::format("{}: {} ({})", what, sqlite3_errmsg(db), sqlite3_errstr(code)));
}

}  // namespace

void Database::Closer::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

Database::Database(sqlite3* db)
    : db_(db), cache_(std::make_unique<std::unordered_map<std::string, Statement, SqlHash, std::equal_to<>>>()) {}

void Statement::Finalizer::operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }

Result<Database> Database::open(const std::string& path, OpenMode mode) {
  sqlite3* raw = nullptr;
  // NOMUTEX: each connection is used by one thread at a time under our own locks, so
  // SQLite's per-connection mutex would be pure overhead.
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                    (mode == OpenMode::create_if_missing ? SQLITE_OPEN_CREATE : 0);
  const int code = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Database db(raw);  // owns the handle even when opening failed
  if (code != SQLITE_OK) {
    const char* message = raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(code);
    return make_error(fmt::format("{} ({})", message, sqlite3_errstr(code)));
  }
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

Error Database::error(std::string_view what, int code) const {
  return error_from(db_.get(), what, code);
}

Result<void> Database::exec(std::string_view sql) {
  const std::string text(sql);
  const int code = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, nullptr);
  if (code != SQLITE_OK) {
    return error("sqlite", code);
  }
  return {};
}

Result<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  const int code = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  if (code != SQLITE_OK) {
    sqlite3_finalize(raw);
    return error("sqlite prepare", code);
  }
  return Statement(raw, db_.get());
}

Result<Statement*> Database::cached(std::string_view sql) {
  if (auto found = cache_->find(sql); found != cache_->end()) {
    found->second.reset();
    return &found->second;
  }
  auto prepared = prepare(sql);
  if (!prepared) {
    return prepared.error();
  }
  return &cache_->emplace(std::string(sql), std::move(*prepared)).first->second;
}

Result<void> Database::run_cached(std::string_view sql) {
  auto statement = cached(sql);
  if (!statement) {
    return statement.error();
  }
  auto stepped = (*statement)->step();
  (*statement)->reset();  // a finished statement holds no lock or read snapshot
  if (!stepped) {
    return stepped.error();
  }
  return {};
}

Result<std::int64_t> Database::query_int(std::string_view sql) {
  auto statement = prepare(sql);
  if (!statement) {
    return statement.error();
  }
  auto row = statement->step();
  if (!row) {
    return row.error();
  }
  if (!*row) {
    return make_error(fmt::format("sqlite: no result from {}", sql));
  }
  return statement->column_int(0);
}

Result<std::string> Database::query_text(std::string_view sql) {
  auto statement = prepare(sql);
  if (!statement) {
    return statement.error();
  }
  auto row = statement->step();
  if (!row) {
    return row.error();
  }
  if (!*row) {
    return make_error(fmt::format("sqlite: no result from {}", sql));
  }
  // in_place: Error is constructible from a string too, so plain conversion is ambiguous.
  return Result<std::string>(boost::system::in_place_value, statement->column_text(0));
}

void Statement::bind(int index, std::int64_t value) { sqlite3_bind_int64(statement_.get(), index, value); }

void Statement::bind(int index, double value) { sqlite3_bind_double(statement_.get(), index, value); }

void Statement::bind(int index, std::string_view text) {
  // SQLITE_STATIC: the caller keeps the text alive until the statement has run, which
  // saves a copy per bound string on the write path.
  sqlite3_bind_text(statement_.get(), index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
}

void Statement::bind_null(int index) { sqlite3_bind_null(statement_.get(), index); }

Result<bool> Statement::step() {
  const int code = sqlite3_step(statement_.get());
  if (code == SQLITE_ROW) {
    return true;
  }
  if (code == SQLITE_DONE) {
    return false;
  }
  return error_from(db_, "sqlite", code);
}

void Statement::reset() { sqlite3_reset(statement_.get()); }

void Statement::clear_bindings() { sqlite3_clear_bindings(statement_.get()); }

int Statement::columns() const { return sqlite3_column_count(statement_.get()); }

bool Statement::is_null(int column) const { return sqlite3_column_type(statement_.get(), column) == SQLITE_NULL; }

std::int64_t Statement::column_int(int column) const { return sqlite3_column_int64(statement_.get(), column); }

double Statement::column_double(int column) const { return sqlite3_column_double(statement_.get(), column); }

std::string Statement::column_text(int column) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement_.get(), column));
  const int size = sqlite3_column_bytes(statement_.get(), column);
  return text != nullptr ? std::string(text, static_cast<std::size_t>(size)) : std::string();
}

std::optional<std::int64_t> Statement::column_optional_int(int column) const {
  if (is_null(column)) {
    return std::nullopt;
  }
  return column_int(column);
}

std::optional<double> Statement::column_optional_double(int column) const {
  if (is_null(column)) {
    return std::nullopt;
  }
  return column_double(column);
}

Result<Transaction> Transaction::begin(Database& db, std::string_view begin_sql) {
  if (auto begun = db.run_cached(begin_sql); !begun) {
    return begun.error();
  }
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) {
    // Best effort: if ROLLBACK fails too, SQLite has already rolled back on its own.
    (void)db_->run_cached("ROLLBACK");
  }
}

Result<void> Transaction::commit() {
  auto committed = db_->run_cached("COMMIT");
  if (committed) {
    db_ = nullptr;
  }
  return committed;
}

}  // namespace turnout::ledger::sqlite
