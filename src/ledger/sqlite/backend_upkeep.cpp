// The SQLite writer's work between write rounds: retention (raw rows and second roll-ups)
// and the WAL checkpoint (WalCheckpointLimits).
#include "ledger/rollup.hpp"
#include "ledger/sqlite/backend.hpp"
#include "ledger/sqlite/rollups.hpp"

#include <sqlite3.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

namespace turnout::ledger {

// SQLite calls this after each commit of the writer connection with the WAL's size in
// frames. Installing it also turns SQLite's auto-checkpoint off on that connection (the
// auto-checkpoint is a WAL hook itself): checkpoint_wal runs the checkpoints instead.
int SqliteBackend::note_wal_frames(void* progress, sqlite3* /*db*/, const char* /*schema*/, int frames) {
  auto& wal = *static_cast<WalProgress*>(progress);
  // Commits only append to the WAL, so fewer frames than the last commit left means it
  // started over (after a checkpoint copied it all, ours or another process's): none of
  // it is copied yet. (Compared with `copied`, a first commit after the restart that
  // writes more frames than the last checkpoint copied would keep a stale `copied`.)
  if (frames < wal.frames) wal.copied = 0;
  wal.frames = frames;
  return SQLITE_OK;
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

Result<void> SqliteBackend::checkpoint_wal(bool idle) {
  if (!writer_ || in_memory()) {
    return {};
  }
  WalProgress& wal = writer_->wal;
  if (wal.frames < wal_limits_.forced_pages) wal.forced_backoff = {};  // back under the bound
  const auto now = std::chrono::steady_clock::now();
  const bool forced = wal.frames >= wal_limits_.forced_pages && now >= wal.next_forced;
  if (!forced && !(idle && wal.frames - wal.copied >= wal_limits_.idle_pages)) {
    return {};
  }
  Connection& connection = *writer_->connection;
  std::lock_guard lock(connection.mutex);
  // TRUNCATE copies every frame and empties the WAL file, but only once no reader needs
  // an older snapshot; the busy handler would wait for them (up to the 5 s timeout) while
  // this thread commits nothing and the calls queued behind it wait. With no wait it
  // takes what is free at once: stopped short by a reader (or another connection's write
  // lock), it copies what it can, as PASSIVE does, and returns SQLITE_BUSY.
  if (forced) {
    ++forced_checkpoints_;
    sqlite3_busy_timeout(connection.db.handle(), 0);
  }
  int log_frames = 0;
  int copied_frames = 0;
  const int code = sqlite3_wal_checkpoint_v2(connection.db.handle(), "main",
                                             forced ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE,
                                             &log_frames, &copied_frames);
  if (forced) sqlite3_busy_timeout(connection.db.handle(), kBusyTimeoutMs);
  if (code == SQLITE_OK && forced) {
    wal.frames = 0;  // TRUNCATE emptied the file
    wal.copied = 0;
    wal.forced_backoff = {};
    return {};
  }
  if (forced) {
    // Stopped short: a reader that keeps its snapshot (an export) would stop the next
    // attempt too, so each waits twice as long as the one before, up to the cap.
    wal.forced_backoff = wal.forced_backoff.count() == 0
                             ? wal_limits_.forced_retry
                             : std::min(wal.forced_backoff * 2, std::max(wal_limits_.forced_retry_cap,
                                                                          wal_limits_.forced_retry));
    wal.next_forced = now + wal.forced_backoff;
  }
  // A PASSIVE checkpoint, or a TRUNCATE stopped short: the next one is due once
  // idle_pages more frames were written.
  wal.copied = std::max(copied_frames, 0);
  if (code != SQLITE_OK && code != SQLITE_BUSY) {
    return connection.db.error(fmt::format("ledger database '{}': checkpoint", path_), code);
  }
  return {};
}

}  // namespace turnout::ledger
