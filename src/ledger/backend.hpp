#pragma once
// What a storage engine (SQLite, PostgreSQL) provides to the ledger. The
// threading, queueing, group commit and health tracking live once in QueuedLedger;
// a backend only stores batches and answers statistics.
#include "common/result.hpp"
#include "ledger/ledger.hpp"

#include <span>
#include <string>

namespace turnout::ledger {

class Backend {
 public:
  virtual ~Backend() = default;

  // Stores every record in one transaction: all or none. A record whose key is already
  // stored is skipped. Called from the writer thread only.
  virtual Result<void> write_batch(std::span<const KeyedRecord> records) = 0;

  // Brings the roll-ups up to every record stored so far; returns how many records were
  // counted into them now. A backend that writes the roll-ups with each batch
  // (PostgreSQL) has nothing to do; SQLite folds them after the calls commit, and
  // QueuedLedger calls this every few milliseconds, before a read of the roll-ups, and
  // at close. Called from the writer thread only.
  virtual Result<std::uint64_t> fold_rollups() { return std::uint64_t{0}; }
  // True when the roll-ups may lag the stored records until fold_rollups (readers of
  // stats and series then ask the writer for a fold first). Constant per backend.
  virtual bool folds_rollups_later() const { return false; }

  // Housekeeping of a write-ahead log between write rounds, after the round's callers were
  // told. SQLite copies its WAL into the database file on a thread of its own and only
  // bounds the WAL here; a backend whose server does that has nothing to do. A failure is
  // retried at a later round. Called from the writer thread only.
  virtual Result<void> checkpoint_wal() { return {}; }

  // Deletes up to `limit` raw records with timestamp < cutoff (roll-ups are kept) in one
  // transaction; returns how many went. A backend that folds later deletes only folded
  // records, and folds first when `fold_first` (false while a failed fold waits for its
  // retry time). Called from the writer thread only.
  virtual Result<std::uint64_t> prune_before(double cutoff, std::uint64_t limit, bool fold_first) = 0;

  // Deletes the second-level roll-up rows of buckets before `cutoff` (rollup.hpp: they
  // are kept for a day). Called from the writer thread only.
  virtual Result<void> prune_second_rollups(double cutoff) = 0;

  // Aggregates over one consistent snapshot. Thread-safe.
  virtual Result<StatsReport> stats(const StatsQuery& query) = 0;

  // Per-bucket figures from the roll-ups of one consistent snapshot. Thread-safe.
  virtual Result<SeriesReport> series(const SeriesQuery& query) = 0;
  // The installation secret (installation_secret.hpp) stored in the database's metadata
  // table: `candidate` is stored when there is none yet, and the one stored is returned,
  // so instances that start together on a new database still agree. Called once, at open.
  virtual Result<std::string> installation_secret(const std::string& candidate) = 0;
};

}  // namespace turnout::ledger
