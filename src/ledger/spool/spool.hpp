#pragma once
// The local durable spool: where the ledger writer puts a batch the ledger database did
// not take (PostgreSQL away, disk full, file gone), so that a caller is told "durable" only
// once its record is on disk somewhere (docs/REFERENCE.md §6.4).
//
// An SQLite file (ledger.spool_path), created on first use only, in WAL mode with
// synchronous=FULL: a store() that returns has been fsync'd. The writer drains it back
// into the database, oldest first, once the database takes writes again, and at start-up
// (a spool left behind by a crash). Records keep their ledger keys (KeyedRecord), so one
// drained twice (a crash between the database commit and the spool delete) is stored
// once. Several processes may share a spool file: SQLite locks it, and the keys make their
// drains idempotent. Bounded by max_records: a store that would pass the bound stores
// nothing and fails.
//
// Used by the writer thread only (not thread-safe).
#include "ledger/backend.hpp"
#include "ledger/sqlite/db.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace turnout::ledger {

class Spool {
 public:
  Spool(std::string path, std::uint64_t max_records);

  const std::string& path() const { return path_; }
  std::uint64_t max_records() const { return max_records_; }
  // Records held, as of this process's last operation on the file.
  std::uint64_t size() const { return size_; }
  bool full() const { return size_ >= max_records_; }

  // Opens the file when it exists (a spool left behind) and counts its records; creates
  // nothing. Fails on a file that is not a spool (or a newer turnout's).
  Result<void> open_existing();

  // Stores `records` in one fsync'd transaction, creating the file on first use. All or
  // nothing: fails, storing none, when they would take the spool past max_records.
  Result<void> store(std::span<const KeyedRecord> records);

  // The oldest records, at most `limit`, in spool order.
  struct Batch {
    std::vector<KeyedRecord> records;
    std::int64_t last_seq = 0;  // for remove_through
  };
  Result<Batch> oldest(std::size_t limit);

  // Deletes every record up to `last_seq` (a Batch the database now holds).
  Result<void> remove_through(std::int64_t last_seq);

 private:
  Result<void> open(bool create);
  Result<void> count();

  const std::string path_;
  const std::uint64_t max_records_;
  std::optional<sqlite::Database> db_;
  std::optional<sqlite::Statement> insert_;
  std::uint64_t size_ = 0;
};

}  // namespace turnout::ledger
