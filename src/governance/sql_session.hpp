#pragma once
// One connection to the ledger database for governance, the same SQL on both engines:
// statements use $1, $2, ... parameters given as text (SQLite gets integers bound as
// integers), rows come back as text. SQLite write transactions are BEGIN IMMEDIATE on
// this connection (its own, with a busy timeout), so concurrent replicas on one file
// serialise; PostgreSQL ones are BEGIN, and the statements lock rows explicitly.
// Not thread-safe: the owner (GovernanceStore) serialises use.
#include "common/result.hpp"

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::governance {

enum class Engine { sqlite, postgresql };

using SqlParam = std::optional<std::string>;  // nullopt: NULL
using SqlRow = std::vector<std::optional<std::string>>;

// A column of a row as an integer: 0 when NULL (or not a number, which no column the
// store reads holds). sql_count: the same, never below 0.
std::int64_t sql_integer(const std::optional<std::string>& text);
std::uint64_t sql_count(const std::optional<std::string>& text);

class SqlSession {
 public:
  virtual ~SqlSession() = default;
  virtual Engine engine() const = 0;
  virtual Result<std::vector<SqlRow>> run(std::string_view sql, std::span<const SqlParam> params = {}) = 0;
  virtual Result<void> begin_write() = 0;
  virtual Result<void> commit() = 0;
  virtual void rollback() noexcept = 0;
  // True when the connection is known to be dead and must be reopened.
  virtual bool broken() const = 0;
};

// Who copies an SQLite ledger's WAL into its file. `serve`'s ledger runs the checkpoints
// on a thread of its own (WalCheckpointLimits), so its governance connections must not:
// SQLite's auto-checkpoint would run one inside a hold's commit, on the request path,
// whenever the WAL holds 1,000 pages, which the ledger lets it do. A one-shot CLI
// command, with no writer beside it, keeps the auto-checkpoint. PostgreSQL ignores it.
enum class WalCheckpoints { by_this_connection, by_ledger_writer };

// Opens the ledger database named by a ledger URL, migrating its schema (the ledger's
// migrations, governance tables included) so the CLI works on a new database too.
Result<std::unique_ptr<SqlSession>> open_sql_session(const std::string& ledger_url,
                                                     WalCheckpoints checkpoints = WalCheckpoints::by_this_connection);

// Rolls back unless committed.
class WriteTransaction {
 public:
  static Result<WriteTransaction> begin(SqlSession& session);
  WriteTransaction(WriteTransaction&& other) noexcept : session_(std::exchange(other.session_, nullptr)) {}
  WriteTransaction& operator=(WriteTransaction&&) = delete;
  ~WriteTransaction();
  Result<void> commit();

 private:
  explicit WriteTransaction(SqlSession& session) : session_(&session) {}
  SqlSession* session_;
};

}  // namespace turnout::governance
