#pragma once
// A thin RAII layer over libpq for the PostgreSQL ledger: one connection, text-format
// queries with parameters, COPY FROM STDIN, and transactions that roll back unless
// committed. Every error message is scrubbed of the connection's password.
#include "common/result.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

struct pg_conn;
struct pg_result;

namespace turnout::ledger::pg {

// Where and how to connect, parsed once from the ledger URL.
struct ConnectionTarget {
  std::string url;       // as configured, credentials included; handed to libpq only
  std::string display;   // redacted, for messages
  std::string password;  // from the URL (or its query), to scrub from libpq's messages

  // Validates `url` with libpq's own parser. Errors name the redacted URL only.
  static turnout::Result<ConnectionTarget> parse(std::string_view url);
};

// The rows of a finished query, read as text (libpq's text format).
class QueryResult {
 public:
  explicit QueryResult(pg_result* result);
  int rows() const;
  int columns() const;
  bool is_null(int row, int column) const;
  std::string_view text(int row, int column) const;
  // Integer columns, and numeric sums that must fit in 64 bits (an error otherwise).
  turnout::Result<std::int64_t> integer(int row, int column) const;
  turnout::Result<double> real(int row, int column) const;

 private:
  struct Clear {
    void operator()(pg_result* result) const;
  };
  std::unique_ptr<pg_result, Clear> result_;
};

// A parameter in text form; nullopt is SQL NULL.
using Param = std::optional<std::string>;

class Connection {
 public:
  static turnout::Result<Connection> open(const ConnectionTarget& target);

  // Commands without parameters (several statements allowed).
  turnout::Result<void> exec(std::string_view sql);
  turnout::Result<QueryResult> query(const std::string& sql, std::span<const Param> params = {});
  // Runs `copy_sql` (a COPY ... FROM STDIN) and sends `data` in COPY text format.
  turnout::Result<void> copy_in(const std::string& copy_sql, std::string_view data);

  // True once libpq has seen the connection fail: it must be replaced, not reused.
  bool broken() const;

 private:
  struct Finish {
    void operator()(pg_conn* conn) const;
  };
  Connection(pg_conn* conn, std::string password) : conn_(conn), password_(std::move(password)) {}
  turnout::Error error(std::string_view what, std::string_view detail) const;
  turnout::Result<QueryResult> expect(pg_result* result, int wanted_status, std::string_view what);

  std::unique_ptr<pg_conn, Finish> conn_;
  std::string password_;
};

// BEGIN on construction; ROLLBACK on destruction unless commit() succeeded.
class Transaction {
 public:
  static turnout::Result<Transaction> begin(Connection& connection, std::string_view begin_sql = "BEGIN");
  Transaction(Transaction&& other) noexcept : connection_(std::exchange(other.connection_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  turnout::Result<void> commit();

 private:
  explicit Transaction(Connection& connection) : connection_(&connection) {}
  Connection* connection_;  // null once committed or rolled back
};

// `text` with every occurrence of `secret` masked (no-op for an empty secret).
std::string scrub(std::string text, std::string_view secret);

}  // namespace turnout::ledger::pg
