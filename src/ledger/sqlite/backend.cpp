#include "ledger/sqlite/backend.hpp"

#include "ledger/installation_secret.hpp"
#include "ledger/rollup.hpp"
#include "ledger/sqlite/call_row.hpp"
#include "ledger/sqlite/hold_settlement.hpp"
#include "ledger/sqlite/rollups.hpp"
#include "ledger/sqlite/schema.hpp"
#include "ledger/sqlite/stats.hpp"

#include <sqlite3.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

namespace turnout::ledger {
namespace {

constexpr std::size_t kMaxIdleReaders = 4;
// Calls summed in memory between folds at most (QueuedLedger folds every 4,096): the sums'
// rows stay few, whoever writes batches without folding.
constexpr std::uint64_t kMaxCommittedSums = 100'000;

// The key conflict is the only one to skip: it means this exact record is already stored.
// counted_by_fold = 1: this writer leaves the call's roll-ups to the fold (schema.cpp).
std::string insert_sql() {
  return fmt::format("INSERT INTO calls ({}, counted_by_fold) VALUES ({}, 1) ON CONFLICT (record_key) DO NOTHING",
                     sqlite::call_row_columns(), sqlite::numbered_parameters(sqlite::kCallRowColumnCount));
}

Result<sqlite::Database> open_connection(const std::string& path, sqlite::Database::OpenMode mode) {
  auto db = sqlite::Database::open(path, mode);
  if (!db) {
    return make_error(fmt::format("cannot open ledger database '{}': {}", path, db.error().message));
  }
  sqlite3_busy_timeout(db->handle(), SqliteBackend::kBusyTimeoutMs);
  return db;
}

// WAL: readers never block the writer; synchronous=NORMAL: a commit is in the WAL file
// (the OS page cache) before COMMIT returns, which survives a killed process; only a
// power loss can take the last commits, and docs/REFERENCE.md §6 asks for the former.
Result<void> configure_durability(sqlite::Database& db) {
  auto mode = db.query_text("PRAGMA journal_mode = WAL");
  if (!mode) {
    return mode.error();
  }
  if (*mode != "wal") {
    return make_error(fmt::format("cannot switch the ledger to WAL mode (journal mode is '{}')", *mode));
  }
  return db.exec("PRAGMA synchronous = NORMAL");
}

}  // namespace

Result<std::unique_ptr<SqliteBackend>> SqliteBackend::open(std::string path, WalCheckpointLimits limits) {
  std::unique_ptr<SqliteBackend> backend(new SqliteBackend(std::move(path), limits));
  if (!backend->in_memory()) {
    backend->wal_ = std::make_unique<WalWatch>(limits.idle_pages);
  }
  if (auto opened = backend->open_writer(); !opened) {
    return opened.error();
  }
  if (backend->in_memory()) {
    backend->memory_connection_ = backend->writer_->connection;
  }
  // Catch-up: calls a stopped process committed but had not folded yet are counted
  // before anything reads the roll-ups. A failure does not refuse the ledger (the calls
  // are stored; only /stats lags): QueuedLedger's writer folds again first thing,
  // retries, and reports a fold that keeps failing through health().
  (void)backend->fold_rollups();
  if (backend->wal_) {
    SqliteBackend* started = backend.get();
    backend->wal_->thread = std::thread([started] { started->run_checkpoints(); });
  }
  return backend;
}

SqliteBackend::~SqliteBackend() { stop_checkpoint_thread(); }

Result<void> SqliteBackend::open_writer() {
  auto db = open_connection(path_, sqlite::Database::OpenMode::create_if_missing);
  if (!db) {
    return db.error();
  }
  if (!in_memory()) {
    if (auto configured = configure_durability(*db); !configured) {
      return make_error(fmt::format("ledger database '{}': {}", path_, configured.error().message));
    }
  }
  if (auto migrated = sqlite::migrate(*db, sqlite::ledger_migrations()); !migrated) {
    return make_error(fmt::format("ledger database '{}': {}", path_, migrated.error().message));
  }
  if (auto guarded = sqlite::ensure_watermark_trigger(*db); !guarded) {
    return make_error(fmt::format("ledger database '{}': {}", path_, guarded.error().message));
  }
  auto connection = std::make_shared<Connection>(std::move(*db));
  auto insert = connection->db.prepare(insert_sql());
  if (!insert) {
    return insert.error();
  }
  auto writer = std::make_unique<Writer>();
  writer->connection = std::move(connection);
  writer->insert.emplace(std::move(*insert));
  if (wal_) {
    sqlite3_wal_hook(writer->connection->db.handle(), &SqliteBackend::note_wal_frames, wal_.get());
    {
      std::lock_guard lock(wal_->mutex);
      ++wal_->writer_opens;
      wal_->writer_gone = false;
    }
    wal_->changed.notify_all();  // a checkpoint asked while the writer was gone may run now
  }
  writer_ = std::move(writer);
  restart_committed_sums();
  {
    // Readers opened before this writer may be looking at a file that has since been
    // replaced; retire them.
    std::lock_guard lock(readers_mutex_);
    ++reader_generation_;
    idle_readers_.clear();
  }
  return {};
}

Result<void> SqliteBackend::write_batch(std::span<const KeyedRecord> records) {
  if (auto ready = writer_ready(); !ready) {
    return ready.error();
  }
  auto written = insert_all(records);
  if (!written) {
    if (!in_memory()) {
      discard_writer();
    }
    return make_error(fmt::format("ledger database '{}': {}", path_, written.error().message));
  }
  return {};
}

Result<void> SqliteBackend::check_not_moved(Connection& connection) {
  if (!in_memory()) {
    // Writes to a file that was deleted or renamed would "succeed" into an inode nobody
    // will ever read again; refuse them so the writer reopens the real path.
    int moved = 0;
    if (sqlite3_file_control(connection.db.handle(), "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK && moved) {
      return make_error("the database file was moved or deleted");
    }
  }
  return {};
}

Result<void> SqliteBackend::insert_all(std::span<const KeyedRecord> records) {
  Connection& connection = *writer_->connection;
  std::lock_guard lock(connection.mutex);
  if (auto present = check_not_moved(connection); !present) {
    return present;
  }
  auto transaction = sqlite::Transaction::begin(connection.db, "BEGIN IMMEDIATE");
  if (!transaction) {
    return transaction.error();
  }
  Result<void> written = insert_in_transaction(records);
  if (written) written = transaction->commit();
  if (written) sum_committed(records);
  return written;
}

void SqliteBackend::restart_committed_sums() {
  writer_->committed.emplace(unix_now() - kSecondRollupLifetime);
}

void SqliteBackend::sum_committed(std::span<const KeyedRecord> records) {
  std::optional<sqlite::CommittedRollups>& committed = writer_->committed;
  for (const auto& [index, seq] : writer_->stored) {
    if (!committed) break;
    if (committed->calls >= kMaxCommittedSums) {
      committed.reset();  // a writer that is not folding (an import): the fold reads them back
      break;
    }
    const CallRecord& record = records[index].record;
    if (!committed->rollups.add(record)) {
      committed.reset();  // a sum overflow: the read-back fold finds it again and reports it
      break;
    }
    if (committed->calls == 0) {
      committed->first_seq = seq;
      committed->oldest_timestamp = record.timestamp;
    }
    committed->last_seq = seq;
    committed->oldest_timestamp = std::min(committed->oldest_timestamp, record.timestamp);
    ++committed->calls;
  }
  writer_->stored.clear();
}

Result<std::uint64_t> SqliteBackend::fold_rollups() {
  if (auto ready = writer_ready(); !ready) {
    return ready.error();
  }
  auto folded = fold_with_writer();
  if (!folded) {
    // As write_batch: a file moved or replaced under the writer is reopened next time.
    // A data error (a sum beyond 64 bits) leaves the connection sound: reopening it would
    // only retire the readers and run the migration check again, for the same error.
    if (!in_memory() && !writer_still_sound()) {
      discard_writer();
    }
    return make_error(fmt::format("ledger database '{}': {}", path_, folded.error().message));
  }
  return folded;
}

bool SqliteBackend::writer_still_sound() {
  Connection& connection = *writer_->connection;
  std::lock_guard lock(connection.mutex);
  // An I/O error, a corrupt or replaced file fails this read too; a data error does not.
  return check_not_moved(connection) && sqlite::calls_await_fold(connection.db);
}

Result<std::uint64_t> SqliteBackend::fold_with_writer() {
  Connection& connection = *writer_->connection;
  std::lock_guard lock(connection.mutex);
  if (auto present = check_not_moved(connection); !present) {
    return present.error();
  }
  // Most folds asked for by a /stats read find nothing new: say so without the write lock.
  if (auto waiting = sqlite::calls_await_fold(connection.db); !waiting || !*waiting) {
    return waiting ? Result<std::uint64_t>(std::uint64_t{0}) : Result<std::uint64_t>(waiting.error());
  }
  auto transaction = sqlite::Transaction::begin(connection.db, "BEGIN IMMEDIATE");
  if (!transaction) {
    return transaction.error();
  }
  Result<std::uint64_t> folded = fold_in_transaction();
  if (folded) {
    if (auto committed = transaction->commit(); !committed) {
      writer_->histograms.clear();
      folded = committed.error();
    }
  }
  return folded;
}

Result<std::uint64_t> SqliteBackend::fold_in_transaction() {
  Result<std::uint64_t> folded = [&]() -> Result<std::uint64_t> {
    if (auto checked = check_histogram_cache(); !checked) {
      return checked.error();
    }
    if (!writer_->committed) {
      return sqlite::fold_new_calls(writer_->connection->db, &writer_->histograms);
    }
    bool from_memory = false;
    auto done = sqlite::fold_committed_calls(writer_->connection->db, *writer_->committed, &writer_->histograms,
                                             from_memory);
    if (done && from_memory) ++folds_from_memory_;
    return done;
  }();
  // Either way the sums start over: what they held is folded now, or (a fold that did
  // not commit) read back by the next fold. A fold that did not commit may also have left
  // rows in the histogram cache that the database does not hold.
  restart_committed_sums();
  if (!folded) writer_->histograms.clear();
  return folded;
}

Result<void> SqliteBackend::check_histogram_cache() {
  // A cached statement: a fresh prepare per batch would parse SQL on the write path.
  auto statement = writer_->connection->db.cached("PRAGMA data_version");
  if (!statement) {
    return statement.error();
  }
  auto row = (*statement)->step();
  if (!row || !*row) {
    (*statement)->reset();
    return row ? make_error("sqlite: no result from PRAGMA data_version") : row.error();
  }
  const std::int64_t version = (*statement)->column_int(0);
  (*statement)->reset();
  if (version != writer_->data_version) {
    writer_->histograms.clear();
    writer_->committed.reset();  // another connection changed the calls: read them back
    writer_->data_version = version;
  }
  return {};
}

Result<void> SqliteBackend::insert_in_transaction(std::span<const KeyedRecord> records) {
  Connection& connection = *writer_->connection;
  sqlite::Statement& insert = *writer_->insert;
  // The roll-ups are not written here: fold_rollups counts the stored rows later (the
  // watermark makes that exact). Only records this transaction really stores settle
  // their holds: a re-sent batch whose first attempt did commit must not charge twice.
  std::vector<sqlite::HoldCharge> charges;  // holds of the records stored now, settled with them
  Result<void> inserted;
  writer_->stored.clear();
  for (const KeyedRecord& keyed : records) {
    insert.reset();
    sqlite::bind_call_row(insert, keyed);
    if (auto stepped = insert.step(); !stepped) {
      inserted = stepped.error();
      break;
    }
    if (sqlite3_changes(connection.db.handle()) == 1) {
      writer_->stored.emplace_back(static_cast<std::size_t>(&keyed - records.data()),
                                   sqlite3_last_insert_rowid(connection.db.handle()));
      if (!keyed.record.hold_id.empty()) {
        charges.push_back({keyed.record.hold_id, keyed.record.cost ? keyed.record.cost->pico : 0,
                           call_tokens(keyed.record)});
      }
    }
  }
  insert.reset();
  insert.clear_bindings();  // drops the pointers to the records' text before it goes away
  if (!inserted) {
    return inserted.error();
  }
  BudgetDeltas deltas;
  if (auto settled = sqlite::delete_holds(connection.db, charges, false, deltas); !settled) {
    return settled.error();
  }
  return sqlite::apply_budget_deltas(connection.db, deltas);
}

Result<std::string> SqliteBackend::installation_secret(const std::string& candidate) {
  if (auto ready = writer_ready(); !ready) {
    return ready.error();
  }
  Connection& connection = *writer_->connection;
  std::lock_guard lock(connection.mutex);
  auto store = connection.db.prepare("INSERT INTO metadata (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING");
  if (!store) {
    return store.error();
  }
  store->bind(1, kInstallationSecretName);
  store->bind(2, std::string_view(candidate));
  if (auto stored = store->step(); !stored) {
    return make_error(fmt::format("ledger database '{}': {}", path_, stored.error().message));
  }
  auto read = connection.db.prepare("SELECT value FROM metadata WHERE name = ?1");
  if (!read) {
    return read.error();
  }
  read->bind(1, kInstallationSecretName);
  auto row = read->step();
  if (!row || !*row) {
    return make_error(fmt::format("ledger database '{}': the installation secret cannot be read", path_));
  }
  return Result<std::string>(boost::system::in_place_value, read->column_text(0));
}

void SqliteBackend::discard_writer() {
  writer_.reset();
  if (!wal_ || !wal_->thread.joinable()) return;
  // The checkpoint thread closes its connection (after the round it may be running)
  // before the writer can open the path again: see WalWatch::writer_gone.
  std::unique_lock lock(wal_->mutex);
  wal_->writer_gone = true;
  wal_->changed.notify_all();
  wal_->changed.wait(lock, [&] { return wal_->stopping || !wal_->thread_connection; });
}

Result<std::shared_ptr<SqliteBackend::Connection>> SqliteBackend::acquire_reader(std::uint64_t& generation) {
  if (in_memory()) {
    return memory_connection_;
  }
  {
    std::lock_guard lock(readers_mutex_);
    generation = reader_generation_;
    if (!idle_readers_.empty()) {
      auto reader = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return reader;
    }
  }
  // existing_only: a reader must never create an empty database where the ledger was.
  auto db = open_connection(path_, sqlite::Database::OpenMode::existing_only);
  if (!db) {
    return db.error();
  }
  if (auto read_only = db->exec("PRAGMA query_only = 1"); !read_only) {
    return read_only.error();
  }
  return std::make_shared<Connection>(std::move(*db));
}

void SqliteBackend::release_reader(std::shared_ptr<Connection> reader, std::uint64_t generation) {
  if (in_memory()) {
    return;
  }
  std::lock_guard lock(readers_mutex_);
  if (generation == reader_generation_ && idle_readers_.size() < kMaxIdleReaders) {
    idle_readers_.push_back(std::move(reader));
  }
}

template <class Report, class Query>
Result<Report> SqliteBackend::read(Result<Report> (*run)(sqlite::Database&, const Query&), const Query& query) {
  std::uint64_t generation = 0;
  auto reader = acquire_reader(generation);
  if (!reader) {
    return reader.error();
  }
  Result<Report> report = [&] {
    std::lock_guard lock((*reader)->mutex);
    return run((*reader)->db, query);
  }();
  if (report) {
    release_reader(std::move(*reader), generation);  // a reader that failed is closed, not reused
  }
  return report;
}

Result<StatsReport> SqliteBackend::stats(const StatsQuery& query) { return read(&query_sqlite_stats, query); }

Result<SeriesReport> SqliteBackend::series(const SeriesQuery& query) { return read(&query_sqlite_series, query); }

}  // namespace turnout::ledger
