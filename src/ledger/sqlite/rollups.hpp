#pragma once
// Writing roll-ups (rollup.hpp) to SQLite: additive upserts, and the one-time backfill
// that builds them from the raw rows of a ledger written before they existed.
#include "common/result.hpp"
#include "ledger/rollup.hpp"
#include "ledger/sqlite/db.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace turnout::ledger::sqlite {

// The latency histogram rows one writer connection last stored, as stored, so a batch is
// merged into them instead of each row being read back, decoded and wholly re-encoded
// (that was ~35% of the writer thread's CPU at the 300-token load, issue 16): each cell
// keeps its text, and only the cells a batch changes are encoded again. One row per
// (width, instance, model): the newest bucket written, so the cache holds widths x models
// rows however long the process runs. It is only right while this connection is the
// database's only writer of those rows: the owner clears it when another connection has
// committed (PRAGMA data_version), when a transaction does not commit, and around pruning.
class HistogramRowCache {
 public:
  // Merges `added` into the row known for `key` and sets `text` to the row's new stored
  // text; false (and nothing changed) when the row is not known.
  bool merge(const HistogramKey& key, const LatencyCells& added, std::string& text);
  // Remembers `cells` as the stored row of `key` (replacing an older bucket's row).
  void store(const HistogramKey& key, const LatencyCells& cells);
  void clear() { rows_.clear(); }
  std::size_t size() const { return rows_.size(); }

 private:
  struct EncodedCell {
    int bucket = 0;
    LatencyCell cell;
    std::uint8_t size = 0;
    char text[kMaxLatencyCellText];
    void encode();
  };
  struct Row {
    std::int64_t bucket = 0;
    std::vector<EncodedCell> cells;  // by bucket: a flat array is walked per batch, a map's nodes were not cheap
  };
  using Series = std::tuple<std::int64_t, std::string, std::string>;  // width, instance, model
  std::map<Series, Row> rows_;
};

// Adds `rollups` to the stored roll-up rows; the caller holds the transaction. With a
// cache, histogram rows it knows are not read back, and every row written is stored in it.
Result<void> write_rollups(Database& db, const RollupBuilder& rollups, HistogramRowCache* histograms = nullptr);

// Folds the calls stored after the roll-up watermark (table rollup_watermark) into the
// roll-ups and moves the watermark to the last of them, in the caller's write
// transaction; returns how many calls were folded. The calls are read back from the
// table, not taken from the writer's memory, so any connection may fold (a second
// process on the file, the catch-up at open after a crash) and a call is counted once.
Result<std::uint64_t> fold_new_calls(Database& db, HistogramRowCache* histograms = nullptr);

// The calls one writer connection stored since its last fold, summed as they were
// committed, with the seqs they were stored under: a fold whose new calls are exactly these
// writes the sums instead of reading the rows back (issue 16: the read-back was ~9% of the
// writer thread at the 300-token load).
struct CommittedRollups {
  explicit CommittedRollups(double seconds_since) : rollups(seconds_since), seconds_since(seconds_since) {}
  RollupBuilder rollups;
  double seconds_since;                // the cut-off `rollups` gives second rows from
  std::int64_t first_seq = 0;          // of the first call summed; 0: none yet
  std::int64_t last_seq = 0;
  std::uint64_t calls = 0;
  double oldest_timestamp = 0;
};

// Like fold_new_calls, but when the calls after the watermark are exactly `committed`'s (its
// seqs run from the watermark + 1 to the newest call without a gap) and none is so old
// that this fold's cut-off for second rows would treat it differently, writes
// `committed`'s sums instead of reading the calls back. The caller vouches that no other
// connection changed `calls` since `committed` was started (PRAGMA data_version).
// `from_memory` says which way it went.
Result<std::uint64_t> fold_committed_calls(Database& db, const CommittedRollups& committed,
                                           HistogramRowCache* histograms, bool& from_memory);

// True when calls were stored after the roll-up watermark (a read; no transaction needed).
Result<bool> calls_await_fold(Database& db);

// Deletes second-level roll-up rows of buckets before `cutoff`; the caller holds the transaction.
Result<void> prune_second_rollups(Database& db, double cutoff);

// Rebuilds the roll-ups from every raw row, in chunks (memory stays bounded).
Result<void> backfill_rollups(Database& db);

// backfill_rollups when there are records but no roll-up rows (every stored record has
// roll-up rows, and pruning keeps them): a ledger from before roll-ups existed.
Result<void> backfill_missing_rollups(Database& db);

}  // namespace turnout::ledger::sqlite
