#include "governance/sql_session.hpp"

#include "ledger/ledger_url.hpp"
#include "ledger/postgres/connection.hpp"
#include "ledger/postgres/schema.hpp"
#include "ledger/sqlite/db.hpp"
#include "ledger/sqlite/schema.hpp"

#include <sqlite3.h>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace turnout::governance {
namespace {

constexpr int kBusyTimeoutMs = 5000;

// $N -> ?N: SQLite binds ?N to index N exactly (a $N would be a named parameter).
std::string sqlite_placeholders(std::string_view sql) {
  std::string out(sql);
  for (std::size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i] == '$' && out[i + 1] >= '0' && out[i + 1] <= '9') out[i] = '?';
  }
  return out;
}

std::optional<std::int64_t> as_integer(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  if (text.size() > 1 && (text[0] == '0' || (text[0] == '-' && text[1] == '0'))) return std::nullopt;
  return value;
}

class SqliteSession final : public SqlSession {
 public:
  explicit SqliteSession(ledger::sqlite::Database db) : db_(std::move(db)) {}
  Engine engine() const override { return Engine::sqlite; }

  Result<std::vector<SqlRow>> run(std::string_view sql, std::span<const SqlParam> params) override {
    auto statement = db_.prepare(sqlite_placeholders(sql));
    if (!statement) return statement.error();
    for (std::size_t i = 0; i < params.size(); ++i) {
      const int index = static_cast<int>(i + 1);
      if (!params[i]) {
        statement->bind_null(index);
      } else if (auto number = as_integer(*params[i])) {
        statement->bind(index, *number);
      } else {
        statement->bind(index, std::string_view(*params[i]));
      }
    }
    const int columns = statement->columns();
    std::vector<SqlRow> rows;
    for (;;) {
      auto stepped = statement->step();
      if (!stepped) return stepped.error();
      if (!*stepped) break;
      SqlRow row;
      for (int c = 0; c < columns; ++c) {
        if (statement->is_null(c)) {
          row.emplace_back();
        } else {
          row.emplace_back(statement->column_text(c));
        }
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  Result<void> begin_write() override { return db_.exec("BEGIN IMMEDIATE"); }
  Result<void> commit() override { return db_.exec("COMMIT"); }
  void rollback() noexcept override { (void)db_.exec("ROLLBACK"); }
  bool broken() const override { return false; }

 private:
  ledger::sqlite::Database db_;
};

// Reconnects (outside a transaction) once libpq has seen the connection fail, so a
// database restart costs the calls in flight, not every later one.
class PostgresSession final : public SqlSession {
 public:
  PostgresSession(ledger::pg::ConnectionTarget target, ledger::pg::Connection connection)
      : target_(std::move(target)), connection_(std::move(connection)) {}
  Engine engine() const override { return Engine::postgresql; }

  Result<std::vector<SqlRow>> run(std::string_view sql, std::span<const SqlParam> params) override {
    if (!in_transaction_) {
      if (auto ready = reconnect_if_broken(); !ready) return ready.error();
    }
    auto result = connection_->query(std::string(sql), params);
    if (!result) return result.error();
    std::vector<SqlRow> rows;
    rows.reserve(static_cast<std::size_t>(result->rows()));
    for (int r = 0; r < result->rows(); ++r) {
      SqlRow row;
      for (int c = 0; c < result->columns(); ++c) {
        if (result->is_null(r, c)) {
          row.emplace_back();
        } else {
          row.emplace_back(std::string(result->text(r, c)));
        }
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  Result<void> begin_write() override {
    if (auto ready = reconnect_if_broken(); !ready) return ready.error();
    auto begun = connection_->exec("BEGIN");
    in_transaction_ = bool(begun);
    return begun;
  }
  Result<void> commit() override {
    in_transaction_ = false;
    return connection_->exec("COMMIT");
  }
  void rollback() noexcept override {
    in_transaction_ = false;
    if (connection_) (void)connection_->exec("ROLLBACK");
  }
  bool broken() const override { return !connection_ || connection_->broken(); }

 private:
  Result<void> reconnect_if_broken() {
    if (connection_ && !connection_->broken()) return {};
    connection_.reset();
    auto fresh = ledger::pg::Connection::open(target_);
    if (!fresh) return fresh.error();
    connection_.emplace(std::move(*fresh));
    return {};
  }

  ledger::pg::ConnectionTarget target_;
  std::optional<ledger::pg::Connection> connection_;
  bool in_transaction_ = false;
};

}  // namespace

std::int64_t sql_integer(const std::optional<std::string>& text) {
  std::int64_t value = 0;
  if (text) std::from_chars(text->data(), text->data() + text->size(), value);
  return value;
}

std::uint64_t sql_count(const std::optional<std::string>& text) {
  return static_cast<std::uint64_t>(std::max<std::int64_t>(sql_integer(text), 0));
}

Result<std::unique_ptr<SqlSession>> open_sql_session(const std::string& ledger_url, WalCheckpoints checkpoints) {
  auto parsed = ledger::parse_ledger_url(ledger_url);
  if (!parsed) return parsed.error();
  if (parsed->kind == ledger::LedgerKind::postgresql) {
    auto target = ledger::pg::ConnectionTarget::parse(parsed->location);
    if (!target) return target.error();
    auto connection = ledger::pg::Connection::open(*target);
    if (!connection) return connection.error();
    if (auto migrated = ledger::pg::migrate(*connection, ledger::pg::ledger_migrations()); !migrated) {
      return make_error(fmt::format("ledger database '{}': {}", target->display, migrated.error().message));
    }
    return std::unique_ptr<SqlSession>(std::make_unique<PostgresSession>(std::move(*target), std::move(*connection)));
  }
  if (parsed->kind == ledger::LedgerKind::sqlite_memory) {
    return make_error("governance needs a ledger database that outlives the process (sqlite:PATH or postgresql://)");
  }
  auto db = ledger::sqlite::Database::open(parsed->location);
  if (!db) return make_error(fmt::format("cannot open ledger database '{}': {}", parsed->location, db.error().message));
  sqlite3_busy_timeout(db->handle(), kBusyTimeoutMs);
  if (auto wal = db->query_text("PRAGMA journal_mode = WAL"); !wal) return wal.error();
  // As the ledger's own connection: a committed hold survives a killed process (it is in
  // the WAL file) without an fsync on the request path; only a power loss can take it.
  if (auto sync = db->exec("PRAGMA synchronous = NORMAL"); !sync) return sync.error();
  if (checkpoints == WalCheckpoints::by_ledger_writer) sqlite3_wal_autocheckpoint(db->handle(), 0);
  if (auto migrated = ledger::sqlite::migrate(*db, ledger::sqlite::ledger_migrations()); !migrated) {
    return make_error(fmt::format("ledger database '{}': {}", parsed->location, migrated.error().message));
  }
  return std::unique_ptr<SqlSession>(std::make_unique<SqliteSession>(std::move(*db)));
}

Result<WriteTransaction> WriteTransaction::begin(SqlSession& session) {
  if (auto begun = session.begin_write(); !begun) return begun.error();
  return WriteTransaction(session);
}

WriteTransaction::~WriteTransaction() {
  if (session_ != nullptr) session_->rollback();
}

Result<void> WriteTransaction::commit() {
  SqlSession* session = std::exchange(session_, nullptr);
  auto committed = session->commit();
  if (!committed) session->rollback();
  return committed;
}

}  // namespace turnout::governance
