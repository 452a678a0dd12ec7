#pragma once
// Thin RAII layer over the SQLite C API: a connection, a prepared statement and a
// transaction guard, with every failure turned into a turnout::Error that carries
// SQLite's own message.
#include "common/result.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

struct sqlite3;
struct sqlite3_stmt;

namespace turnout::ledger::sqlite {

class Statement;

class Database {
 public:
  enum class OpenMode { create_if_missing, existing_only };

  // Opens the database file at `path`; ":memory:" is a private in-memory database. The
  // handle is used by one thread at a time (callers lock).
  static Result<Database> open(const std::string& path, OpenMode mode = OpenMode::create_if_missing);

  Result<void> exec(std::string_view sql);
  Result<Statement> prepare(std::string_view sql);
  // The statement for `sql`, prepared on first use and kept for the connection's life:
  // the ledger's write path runs the same few statements on every batch, and parsing
  // their SQL each time was most of SQLite's share of a call (docs/BENCHMARKS.md).
  // Reset, its bindings kept; valid until the Database is destroyed.
  Result<Statement*> cached(std::string_view sql);
  // Runs a cached statement that returns no rows ("BEGIN IMMEDIATE", "COMMIT").
  Result<void> run_cached(std::string_view sql);

  // The single value of a one-row query such as "PRAGMA user_version".
  Result<std::int64_t> query_int(std::string_view sql);
  Result<std::string> query_text(std::string_view sql);

  // "<what>: <SQLite message> (<result code name>)".
  Error error(std::string_view what, int code) const;

  sqlite3* handle() const { return db_.get(); }

 private:
  struct Closer {
    void operator()(sqlite3* db) const;
  };
  struct SqlHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view sql) const { return std::hash<std::string_view>{}(sql); }
  };
  explicit Database(sqlite3* db);
  std::unique_ptr<sqlite3, Closer> db_;
  // Declared after db_, so the statements are finalized before the connection closes.
  std::unique_ptr<std::unordered_map<std::string, Statement, SqlHash, std::equal_to<>>> cache_;
};

class Statement {
 public:
  // Binding: 1-based indexes, as in SQLite.
  void bind(int index, std::int64_t value);
  void bind(int index, double value);
  void bind(int index, std::string_view text);  // must outlive the next step()
  void bind_null(int index);
  template <class T>
  void bind(int index, const std::optional<T>& value) {
    if (value) {
      bind(index, *value);
    } else {
      bind_null(index);
    }
  }

  // true: a row is available; false: the statement is done.
  Result<bool> step();
  // Rewinds the statement so it can run again; bindings are kept.
  void reset();
  void clear_bindings();

  int columns() const;  // in each result row
  bool is_null(int column) const;
  std::int64_t column_int(int column) const;
  double column_double(int column) const;
  std::string column_text(int column) const;
  std::optional<std::int64_t> column_optional_int(int column) const;
  std::optional<double> column_optional_double(int column) const;

 private:
  friend class Database;
  struct Finalizer {
    void operator()(sqlite3_stmt* statement) const;
  };
  Statement(sqlite3_stmt* statement, sqlite3* db) : statement_(statement), db_(db) {}
  std::unique_ptr<sqlite3_stmt, Finalizer> statement_;
  sqlite3* db_;  // the owning connection, for error messages
};

// BEGIN on construction via begin(); ROLLBACK in the destructor unless commit() succeeded,
// so an early error return never leaves a transaction open on the connection.
class Transaction {
 public:
  // `begin_sql`: "BEGIN", "BEGIN IMMEDIATE", ... (BEGIN, COMMIT and ROLLBACK run as cached
  // statements: a transaction per write batch should not parse SQL text).
  static Result<Transaction> begin(Database& db, std::string_view begin_sql = "BEGIN");
  Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  Result<void> commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;  // null once finished
};

}  // namespace turnout::ledger::sqlite
