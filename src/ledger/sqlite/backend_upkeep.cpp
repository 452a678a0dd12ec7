// The SQLite ledger's upkeep: retention (raw rows and second roll-ups) between the
// writer's rounds, and the WAL checkpoints (WalCheckpointLimits): the checkpoint thread's
// PASSIVE ones and the writer's forced one.
#include "ledger/rollup.hpp"
#include "ledger/sqlite/backend.hpp"
#include "ledger/sqlite/rollups.hpp"

#include <sqlite3.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>

namespace turnout::ledger {

// SQLite calls this after each commit of the writer connection with the WAL's size in
// frames. Installing it also turns SQLite's auto-checkpoint off on that connection (the
// auto-checkpoint is a WAL hook itself): the checkpoint thread and checkpoint_wal run the
// checkpoints instead. One uncontended lock per commit; a wake-up per idle_pages frames.
int SqliteBackend::note_wal_frames(void* watch, sqlite3* /*db*/, const char* /*schema*/, int frames) {
  auto& wal = *static_cast<WalWatch*>(watch);
  bool wake = false;
  {
    std::lock_guard lock(wal.mutex);
    // Commits only append to the WAL, so fewer frames than the last commit left means it
    // started over (after a checkpoint copied it all, ours or another process's): none of
    // it is copied yet. (Compared with `checked`, a first commit after the restart that
    // writes more frames than the last checkpoint saw would keep a stale `checked`.)
    if (frames < wal.frames) {
      wal.checked = 0;
      ++wal.restarts;
    }
    wal.frames = frames;
    if (!wal.due && !wal.running && frames - wal.checked >= wal.idle_pages) {
      wal.due = true;
      wake = true;
    }
  }
  if (wake) wal.changed.notify_all();
  return SQLITE_OK;
}

namespace {

// Rounds run back to back after the first, each copying what arrived during the one
// before, before the thread gives up on getting close enough to ask for a hold (the
// writer appends as fast as a round copies) and waits for idle_pages more frames.
constexpr int kMaxChaseRounds = 5;

// How long the checkpoint thread waits for the writer to come round to the hold it asked
// for. The writer comes between every two rounds, so only an idle writer (or one in a long
// fold) makes it wait this long; an idle writer commits nothing meanwhile anyway, so the
// final round runs then without the hold.
constexpr std::chrono::milliseconds kHoldAskWait{50};

}  // namespace

// A round that did not reach the WAL's end (the writer appended meanwhile) copies pages
// into the database file without an fsync of it; SQLite fsyncs the file only in the round
// that copies the last frame, with every page the rounds before it copied. Done here,
// before the writer is asked to hold, that fsync has only the final round's pages left;
// likewise the final round's fsync of the WAL has only the frames written since.
void SqliteBackend::sync_database_file(sqlite::Database& db) {
  sqlite3_file* file = nullptr;
  if (sqlite3_file_control(db.handle(), "main", SQLITE_FCNTL_FILE_POINTER, &file) == SQLITE_OK && file &&
      file->pMethods) {
    (void)file->pMethods->xSync(file, SQLITE_SYNC_NORMAL);  // a failure is SQLite's own fsync's to report
  }
  file = nullptr;
  if (sqlite3_file_control(db.handle(), "main", SQLITE_FCNTL_JOURNAL_POINTER, &file) == SQLITE_OK && file &&
      file->pMethods) {
    (void)file->pMethods->xSync(file, SQLITE_SYNC_NORMAL);
  }
}

SqliteBackend::PassiveRound SqliteBackend::run_passive(sqlite::Database& db) {
  PassiveRound round{SQLITE_OK, -1, -1};
  // PASSIVE neither takes the write lock nor waits for readers: the writer commits on
  // meanwhile, and frames a reader's snapshot still needs are copied by a later one.
  round.code = sqlite3_wal_checkpoint_v2(db.handle(), "main", SQLITE_CHECKPOINT_PASSIVE, &round.log_frames,
                                         &round.copied_frames);
  return round;
}

SqliteBackend::PassiveRound SqliteBackend::run_held_round(sqlite::Database& db, std::unique_lock<std::mutex>& lock) {
  WalWatch& wal = *wal_;
  wal.hold = WalWatch::Hold::asked;
  wal.changed.wait_for(lock, kHoldAskWait,
                       [&] { return wal.stopping || wal.writer_gone || wal.hold == WalWatch::Hold::held; });
  if (wal.stopping || wal.writer_gone) {
    wal.hold = WalWatch::Hold::none;
    wal.changed.notify_all();
    return PassiveRound{SQLITE_OK, -1, -1};
  }
  // Held, or the writer did not come (idle): either way no commit starts before this round
  // ends but one that arrives later and sees the hold asked, and waits for it too.
  lock.unlock();
  const PassiveRound round = run_passive(db);
  lock.lock();
  wal.hold = WalWatch::Hold::none;
  wal.changed.notify_all();
  return round;
}

void SqliteBackend::run_checkpoints() {
  WalWatch& wal = *wal_;
  // Its own connection: a checkpoint on the writer's would hold the writer thread, and
  // the calls queued behind it, for the copy and its fsyncs.
  std::optional<sqlite::Database> db;
  std::uint64_t opened_for = 0;
  std::unique_lock lock(wal.mutex);
  for (;;) {
    wal.changed.wait(lock, [&] {
      return wal.stopping || (wal.writer_gone && wal.thread_connection) || (wal.due && !wal.running && !wal.writer_gone);
    });
    if (wal.stopping) return;
    if (wal.writer_gone) {
      // Closed before the writer opens the path again (WalWatch::writer_gone).
      lock.unlock();
      db.reset();
      lock.lock();
      wal.thread_connection = false;
      wal.changed.notify_all();
      continue;
    }
    wal.running = true;
    const std::uint64_t restarts = wal.restarts;
    const std::uint64_t writer_opens = wal.writer_opens;
    const bool reopen = !db || opened_for != writer_opens;
    if (reopen) wal.thread_connection = true;  // opening one
    lock.unlock();
    if (reopen) {
      // The writer reopened the file (it was moved or replaced): follow it. existing_only:
      // never create an empty database where the ledger was.
      db.reset();
      auto opened = sqlite::Database::open(path_, sqlite::Database::OpenMode::existing_only);
      // A first read opens the file's WAL on this connection, without which a checkpoint
      // on it would find nothing to copy.
      if (opened && opened->query_int("PRAGMA user_version")) {
        db.emplace(std::move(*opened));
        opened_for = writer_opens;
      }
    }
    lock.lock();
    if (!db) wal.thread_connection = false;
    // The writer gave up the file while this one was opened: no round on it.
    const bool writer_went = wal.writer_gone;
    lock.unlock();
    PassiveRound round{SQLITE_CANTOPEN, -1, -1};
    std::uint64_t rounds = 0;
    if (db && !writer_went) {
      round = run_passive(*db);
      ++rounds;
    }
    lock.lock();
    // Close to the WAL's end: rounds until few enough frames are left for a short hold.
    // A round stopped short (a reader's snapshot, another checkpoint) ends the chase, as
    // does a writer that gave up the file: it waits for this connection to close before
    // it opens the path again, so a round on the old file copies only the old file's frames.
    for (int chase = 0; db && !writer_went && round.code == SQLITE_OK && round.log_frames >= 0 &&
                        round.copied_frames == round.log_frames && !wal.stopping && !wal.writer_gone &&
                        wal.restarts == restarts;
         ++chase) {
      const int left = wal.frames - round.log_frames;
      if (left <= 0) break;  // everything copied: the writer's next commit starts the WAL over
      if (wal_limits_.hold_pages > 0 && left <= wal_limits_.hold_pages) {
        lock.unlock();
        sync_database_file(*db);
        lock.lock();
        round = run_held_round(*db, lock);
        ++rounds;
        break;
      }
      if (chase == kMaxChaseRounds) break;
      lock.unlock();
      round = run_passive(*db);
      ++rounds;
      lock.lock();
    }
    wal.running = false;
    wal.passive_checkpoints += rounds;
    if (round.code == SQLITE_OK && round.log_frames >= 0 && wal.restarts == restarts) {
      wal.checked = round.log_frames;
    }
    if (round.code != SQLITE_OK) {
      // No connection, or another checkpoint (the writer's forced one, another process's)
      // holds the checkpoint lock: asked again after a pause, not at every commit.
      wal.changed.wait_for(lock, std::chrono::milliseconds(100), [&] { return wal.stopping || wal.writer_gone; });
    }
    wal.due = false;
    wal.changed.notify_all();
  }
}

template <typename T>
T SqliteBackend::read_wal(T WalWatch::*field) const {
  if (!wal_) return T{};
  std::lock_guard lock(wal_->mutex);
  return (*wal_).*field;
}

std::uint64_t SqliteBackend::passive_checkpoints() const { return read_wal(&WalWatch::passive_checkpoints); }

std::uint64_t SqliteBackend::writer_holds() const { return read_wal(&WalWatch::writer_holds); }

std::uint64_t SqliteBackend::writer_holds_cut_short() const { return read_wal(&WalWatch::writer_holds_cut_short); }

std::uint64_t SqliteBackend::wal_restarts() const { return read_wal(&WalWatch::restarts); }

bool SqliteBackend::checkpoint_thread_has_connection() const { return read_wal(&WalWatch::thread_connection); }

void SqliteBackend::wait_for_checkpoint_thread() const {
  if (!wal_) return;
  std::unique_lock lock(wal_->mutex);
  wal_->changed.wait(lock, [&] { return wal_->stopping || (!wal_->due && !wal_->running); });
}

void SqliteBackend::stop_checkpoint_thread() {
  if (!wal_ || !wal_->thread.joinable()) return;
  {
    std::lock_guard lock(wal_->mutex);
    wal_->stopping = true;
  }
  wal_->changed.notify_all();
  wal_->thread.join();
}

Result<void> SqliteBackend::prune_second_rollups(double cutoff) {
  if (auto ready = writer_ready(); !ready) {
    return ready.error();
  }
  Connection& connection = *writer_->connection;
  std::lock_guard lock(connection.mutex);
  auto transaction = sqlite::Transaction::begin(connection.db, "BEGIN IMMEDIATE");
  if (!transaction) {
    return transaction.error();
  }
  // Pruning deletes histogram rows, and the cache must not outlive a row it stands for.
  writer_->histograms.clear();
  if (auto pruned = sqlite::prune_second_rollups(connection.db, cutoff); !pruned) {
    return pruned.error();
  }
  return transaction->commit();
}

Result<std::uint64_t> SqliteBackend::prune_before(double cutoff, std::uint64_t limit, bool fold_first) {
  if (auto ready = writer_ready(); !ready) {
    return ready.error();
  }
  Connection& connection = *writer_->connection;
  std::lock_guard lock(connection.mutex);
  auto transaction = sqlite::Transaction::begin(connection.db, "BEGIN IMMEDIATE");
  if (!transaction) {
    return transaction.error();
  }
  Result<std::uint64_t> removed = [&]() -> Result<std::uint64_t> {
    // The roll-ups outlive the raw rows: a call is counted into them before its row can
    // go, so only rows at or below the watermark are deleted. A fold that fails (a sum
    // overflow, an unreadable row; reported by the writer's own folds) is rolled back
    // without stopping retention of the calls already folded. While one waits for its
    // retry time, retention only deletes what is folded.
    if (fold_first) {
      if (auto saved = connection.db.exec("SAVEPOINT retention_fold"); !saved) {
        return saved.error();
      }
      if (auto folded = fold_in_transaction(); !folded) {
        if (auto undone = connection.db.exec("ROLLBACK TO retention_fold"); !undone) {
          return undone.error();
        }
      }
      if (auto released = connection.db.exec("RELEASE retention_fold"); !released) {
        return released.error();
      }
    }
    auto remove = connection.db.prepare(
        "DELETE FROM calls WHERE seq IN (SELECT seq FROM calls WHERE timestamp < ?1 AND seq <= "
        "(SELECT folded_through_seq FROM rollup_watermark) ORDER BY timestamp LIMIT ?2)");
    if (!remove) {
      return remove.error();
    }
    remove->bind(1, cutoff);
    remove->bind(2, static_cast<std::int64_t>(std::min<std::uint64_t>(limit, INT64_MAX)));
    if (auto done = remove->step(); !done) {
      return done.error();
    }
    // (sqlite3_changes does not count the watermark trigger's update.)
    const auto count = static_cast<std::uint64_t>(sqlite3_changes(connection.db.handle()));
    if (auto committed = transaction->commit(); !committed) {
      return committed.error();
    }
    return count;
  }();
  // A fold that did not commit may have left rows in the cache that the database does not hold.
  if (!removed) writer_->histograms.clear();
  return removed;
}

Result<void> SqliteBackend::checkpoint_wal() {
  if (!writer_ || !wal_) {
    return {};
  }
  WalWatch& wal = *wal_;
  {
    std::unique_lock lock(wal.mutex);
    if (wal.hold == WalWatch::Hold::asked) {
      // Between rounds: this round's callers were told, and the next commit waits for the
      // checkpoint thread's final round (the calls meanwhile queue), or for hold_limit. A
      // hold cut short leaves the thread's round running; it sets the hold back to none.
      wal.hold = WalWatch::Hold::held;
      ++wal.writer_holds;
      wal.changed.notify_all();
      if (!wal.changed.wait_for(lock, wal_limits_.hold_limit,
                                [&] { return wal.stopping || wal.hold != WalWatch::Hold::held; })) {
        ++wal.writer_holds_cut_short;
      }
      return {};
    }
    if (wal.frames < wal_limits_.forced_pages) {
      wal.forced_backoff = {};  // back under the bound
      return {};
    }
    // The checkpoint thread is copying: the WAL may be past the bound only briefly more.
    if (wal.running || std::chrono::steady_clock::now() < wal.next_forced) {
      return {};
    }
    wal.running = true;  // the checkpoint thread waits for this one
  }
  Connection& connection = *writer_->connection;
  int code = SQLITE_OK;
  {
    std::lock_guard lock(connection.mutex);
    // TRUNCATE copies every frame and empties the WAL file, but only once no reader needs
    // an older snapshot; the busy handler would wait for them (up to the 5 s timeout)
    // while this thread commits nothing and the calls queued behind it wait. With no wait
    // it takes what is free at once: stopped short by a reader (or another connection's
    // write lock), it copies what it can, as PASSIVE does, and returns SQLITE_BUSY.
    ++forced_checkpoints_;
    sqlite3_busy_timeout(connection.db.handle(), 0);
    code = sqlite3_wal_checkpoint_v2(connection.db.handle(), "main", SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    sqlite3_busy_timeout(connection.db.handle(), kBusyTimeoutMs);
  }
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(wal.mutex);
    wal.running = false;
    if (code == SQLITE_OK) {
      wal.frames = 0;  // TRUNCATE emptied the file
      wal.checked = 0;
      ++wal.restarts;
      wal.forced_backoff = {};
    } else {
      // Stopped short: a reader that keeps its snapshot (an export) would stop the next
      // attempt too, so each waits twice as long as the one before, up to the cap.
      wal.forced_backoff = wal.forced_backoff.count() == 0
                               ? wal_limits_.forced_retry
                               : std::min(wal.forced_backoff * 2, std::max(wal_limits_.forced_retry_cap,
                                                                            wal_limits_.forced_retry));
      wal.next_forced = now + wal.forced_backoff;
    }
  }
  wal.changed.notify_all();
  if (code != SQLITE_OK && code != SQLITE_BUSY) {
    return connection.db.error(fmt::format("ledger database '{}': checkpoint", path_), code);
  }
  return {};
}

}  // namespace turnout::ledger
