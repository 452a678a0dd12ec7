#include "ledger/spool/spool.hpp"

#include "ledger/sqlite/call_row.hpp"

#include <sqlite3.h>

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>

namespace turnout::ledger {
namespace {

constexpr int kBusyTimeoutMs = 5000;
constexpr std::int64_t kSpoolFormat = 3;  // PRAGMA user_version of a spool file

// The spool's table: the ledger's columns (call_row.cpp), then the governance hold the
// record settles. `seq` orders records as spooled.
std::string schema_sql() {
  return fmt::format(
      "CREATE TABLE spooled (seq INTEGER PRIMARY KEY, {}, hold_id TEXT NOT NULL DEFAULT '') STRICT;"
      "PRAGMA user_version = {};",
      sqlite::call_row_declarations(), kSpoolFormat);
}

// Format 1 (before the endpoint, the count flags and governance's hold id) held chat
// calls without holds: a spool such a turnout left behind gains the columns with those
// values (it is then format 2), and drains as before.
constexpr std::string_view kUpgradeFrom1Sql = R"sql(
  ALTER TABLE spooled ADD COLUMN endpoint TEXT NOT NULL DEFAULT 'chat';
  ALTER TABLE spooled ADD COLUMN count_estimated INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE spooled ADD COLUMN count_partial INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE spooled ADD COLUMN hold_id TEXT NOT NULL DEFAULT '';
)sql";

// An older format's rows move to a table of the current shape: a STRICT table cannot
// change a column's constraints in place (format 2 required counted_prompt_tokens;
// format 3 leaves it NULL when the served model's count was not taken). The columns both
// tables have are copied by name; a column the old one lacks takes its default, and one
// the current format no longer has (removed) is left behind rather than failing the open.
// A renamed column needs its own RENAME COLUMN step first, or its values take the default.
Result<void> rebuild_to_current_format(sqlite::Database& db) {
  if (auto renamed = db.exec("ALTER TABLE spooled RENAME TO spooled_previous"); !renamed) return renamed;
  if (auto created = db.exec(schema_sql()); !created) return created;
  auto shared_columns = db.query_text(
      "SELECT group_concat('\"' || replace(name, '\"', '\"\"') || '\"', ', ') "
      "FROM pragma_table_info('spooled_previous') WHERE name IN (SELECT name FROM pragma_table_info('spooled'))");
  if (!shared_columns) return shared_columns.error();
  return db.exec(fmt::format("INSERT INTO spooled ({0}) SELECT {0} FROM spooled_previous; DROP TABLE spooled_previous;",
                             *shared_columns));
}

// The spool's columns: the ledger's, then the governance hold the record settles.
std::string columns() { return fmt::format("{}, hold_id", sqlite::call_row_columns()); }
constexpr int kHoldIdColumn = sqlite::kCallRowColumnCount + 1;

void bind_record(sqlite::Statement& insert, const KeyedRecord& keyed) {
  sqlite::bind_call_row(insert, keyed);
  insert.bind(kHoldIdColumn, std::string_view(keyed.record.hold_id));
}

// Reads columns 1.. (column 0 is seq) back into a record.
KeyedRecord read_record(const sqlite::Statement& row) {
  KeyedRecord keyed = sqlite::read_call_row(row, 1);
  keyed.record.hold_id = row.column_text(kHoldIdColumn);
  return keyed;
}

// A new file's directory entry must be on disk too, or a power loss could lose the file
// whose records were reported durable.
void sync_directory_of(const std::string& file) {
  std::filesystem::path directory = std::filesystem::path(file).parent_path();
  if (directory.empty()) directory = ".";
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace

Spool::Spool(std::string path, std::uint64_t max_records) : path_(std::move(path)), max_records_(max_records) {}

Result<void> Spool::open_existing() {
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec)) return {};
  return open(false);
}

Result<void> Spool::open(bool create) {
  insert_.reset();
  db_.reset();
  std::error_code ec;
  const bool existed = std::filesystem::exists(path_, ec);
  auto db = sqlite::Database::open(
      path_, create ? sqlite::Database::OpenMode::create_if_missing : sqlite::Database::OpenMode::existing_only);
  if (!db) return make_error(fmt::format("cannot open the ledger spool '{}': {}", path_, db.error().message));
  sqlite3_busy_timeout(db->handle(), kBusyTimeoutMs);
  auto mode = db->query_text("PRAGMA journal_mode = WAL");
  if (!mode || *mode != "wal")
    return make_error(fmt::format("ledger spool '{}': cannot switch to WAL mode{}", path_,
                                  mode ? "" : ": " + mode.error().message));
  // FULL: every commit is fsync'd before it returns, so a stored record survives a power loss.
  if (auto full = db->exec("PRAGMA synchronous = FULL"); !full)
    return make_error(fmt::format("ledger spool '{}': {}", path_, full.error().message));
  {
    auto transaction = sqlite::Transaction::begin(*db, "BEGIN IMMEDIATE");
    if (!transaction) return make_error(fmt::format("ledger spool '{}': {}", path_, transaction.error().message));
    auto version = db->query_int("PRAGMA user_version");
    if (!version) return make_error(fmt::format("ledger spool '{}': {}", path_, version.error().message));
    if (*version == 0) {
      auto tables = db->query_int("SELECT COUNT(*) FROM sqlite_master");
      if (!tables || *tables != 0)
        return make_error(fmt::format("'{}' is not a ledger spool (it holds other tables)", path_));
      if (auto created = db->exec(schema_sql()); !created)
        return make_error(fmt::format("ledger spool '{}': {}", path_, created.error().message));
      if (auto committed = transaction->commit(); !committed)
        return make_error(fmt::format("ledger spool '{}': {}", path_, committed.error().message));
    } else if (*version >= 1 && *version < kSpoolFormat) {
      auto upgraded = *version == 1 ? db->exec(kUpgradeFrom1Sql) : Result<void>{};
      if (upgraded) upgraded = rebuild_to_current_format(*db);
      if (!upgraded) return make_error(fmt::format("ledger spool '{}': {}", path_, upgraded.error().message));
      if (auto committed = transaction->commit(); !committed)
        return make_error(fmt::format("ledger spool '{}': {}", path_, committed.error().message));
    } else if (*version != kSpoolFormat) {
      return make_error(fmt::format("'{}' is not a ledger spool of this turnout (format {})", path_, *version));
    }
  }
  if (!existed) sync_directory_of(path_);
  auto insert = db->prepare(fmt::format("INSERT INTO spooled ({}) VALUES ({}) ON CONFLICT (record_key) DO NOTHING",
                                        columns(), sqlite::numbered_parameters(kHoldIdColumn)));
  if (!insert) return make_error(fmt::format("ledger spool '{}': {}", path_, insert.error().message));
  db_.emplace(std::move(*db));
  insert_.emplace(std::move(*insert));
  return count();
}

Result<void> Spool::count() {
  auto rows = db_->query_int("SELECT COUNT(*) FROM spooled");
  if (!rows) return make_error(fmt::format("ledger spool '{}': {}", path_, rows.error().message));
  size_ = static_cast<std::uint64_t>(*rows);
  return {};
}

Result<void> Spool::store(std::span<const KeyedRecord> records) {
  if (records.empty()) return {};
  if (db_) {
    // A spool file deleted or renamed under us would take records nobody reads again.
    int moved = 0;
    if (sqlite3_file_control(db_->handle(), "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK && moved) {
      insert_.reset();
      db_.reset();
    }
  }
  if (!db_) {
    if (auto opened = open(true); !opened) return opened.error();
  }
  if (size_ + records.size() > max_records_)
    return make_error(fmt::format("the ledger spool '{}' is full ({} of {} records, ledger.spool_max_records)", path_,
                                  size_, max_records_));
  auto transaction = sqlite::Transaction::begin(*db_, "BEGIN IMMEDIATE");
  if (!transaction) return make_error(fmt::format("ledger spool '{}': {}", path_, transaction.error().message));
  std::uint64_t added = 0;
  Result<void> inserted;
  for (const KeyedRecord& keyed : records) {
    insert_->reset();
    bind_record(*insert_, keyed);
    if (auto stepped = insert_->step(); !stepped) {
      inserted = stepped.error();
      break;
    }
    added += static_cast<std::uint64_t>(sqlite3_changes(db_->handle()));
  }
  insert_->reset();
  insert_->clear_bindings();  // drops the pointers to the records' text before it goes away
  if (!inserted) return make_error(fmt::format("ledger spool '{}': {}", path_, inserted.error().message));
  if (auto committed = transaction->commit(); !committed)
    return make_error(fmt::format("ledger spool '{}': {}", path_, committed.error().message));
  size_ += added;
  return {};
}

Result<Spool::Batch> Spool::oldest(std::size_t limit) {
  Batch batch;
  if (!db_) return batch;
  auto rows = db_->prepare(fmt::format("SELECT seq, {} FROM spooled ORDER BY seq LIMIT ?1", columns()));
  if (!rows) return make_error(fmt::format("ledger spool '{}': {}", path_, rows.error().message));
  rows->bind(1, static_cast<std::int64_t>(limit));
  for (;;) {
    auto row = rows->step();
    if (!row) return make_error(fmt::format("ledger spool '{}': {}", path_, row.error().message));
    if (!*row) break;
    batch.last_seq = rows->column_int(0);
    batch.records.push_back(read_record(*rows));
  }
  if (batch.records.empty()) size_ = 0;  // another process may have drained it
  return batch;
}

Result<void> Spool::remove_through(std::int64_t last_seq) {
  if (!db_) return {};
  auto remove = db_->prepare("DELETE FROM spooled WHERE seq <= ?1");
  if (!remove) return make_error(fmt::format("ledger spool '{}': {}", path_, remove.error().message));
  remove->bind(1, last_seq);
  if (auto done = remove->step(); !done)
    return make_error(fmt::format("ledger spool '{}': {}", path_, done.error().message));
  const auto removed = static_cast<std::uint64_t>(sqlite3_changes(db_->handle()));
  size_ = removed >= size_ ? 0 : size_ - removed;
  return {};
}

}  // namespace turnout::ledger
