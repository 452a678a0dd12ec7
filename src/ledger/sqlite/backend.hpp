#pragma once
// SQLite storage for the ledger. A file database runs in WAL mode: one writer connection
// (used by the writer thread only) and a small pool of read connections, so /stats never
// waits for a commit and a commit never waits for /stats. A private in-memory database
// has no second connection to offer, so readers share the writer's under its mutex.
#include "ledger/backend.hpp"
#include "ledger/sqlite/db.hpp"
#include "ledger/sqlite/rollups.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace turnout::ledger {

// When the WAL's pages are copied into the database file (a checkpoint). SQLite's own
// auto-checkpoint does it inside the COMMIT that takes the WAL past 1,000 pages, so a
// batch's callers waited for it (~12% of the writer thread at the 300-token load, issue
// 16); run by the writer between rounds instead, it still stalled the calls queued behind
// it for its fsyncs (p99 ~13 ms at the 300-token load, BENCHMARKS). So a PASSIVE
// checkpoint runs on a thread and connection of its own once idle_pages frames are not yet
// copied, concurrently with the writer's commits (PASSIVE takes neither the write lock nor
// waits for readers).
//
// A WAL starts over from its beginning only at a commit that finds every frame copied, and
// under load that never pauses between commits a concurrent checkpoint never copies the
// last commit's frames before the next one. So once the thread's rounds have left at most
// hold_pages frames uncopied (each round is shorter than the last: it copies only what
// arrived during the one before), it asks the writer to hold its next commit: the writer,
// between rounds, waits until the thread's final round copied the rest (a small fsync of
// the WAL, a few pages, an fsync of the database file), at most hold_limit, and its next
// commit starts the WAL over. A round a reader's snapshot stopped short asks for no hold
// (the final round would stop short too), so readers never make the writer wait. hold_pages
// 0 never asks.
//
// The WAL stays bounded whatever happens (readers that stop every checkpoint short, a
// final round slower than hold_limit): past forced_pages the writer itself runs a TRUNCATE
// checkpoint between rounds. It never waits for readers of older snapshots (the writer
// thread would commit nothing meanwhile): stopped short by one, it copies what it can and
// is tried again after forced_retry, doubled per attempt stopped short up to
// forced_retry_cap, so a long reader (an export) costs a few quick attempts, not a stall
// per second.
struct WalCheckpointLimits {
  // 16 MB at SQLite's 4 KiB pages (SQLite's own auto-checkpoint: 1,000): the copy is off
  // the writer's path, and a hold per 4,000 frames is a quarter of the holds.
  int idle_pages = 4'000;
  int hold_pages = 64;  // the final round: two fsyncs of little (~2.5 ms on this VM) and a few pages
  std::chrono::milliseconds hold_limit{10};
  int forced_pages = 16'384;   // 64 MB
  std::chrono::milliseconds forced_retry{1'000};
  std::chrono::milliseconds forced_retry_cap{30'000};
};

class SqliteBackend final : public Backend {
 public:
  // How long a connection waits for another one's lock (another process writing the same
  // file, a checkpoint) before reporting SQLITE_BUSY.
  static constexpr int kBusyTimeoutMs = 5000;

  // `path` is a file path, or ":memory:" for a private in-memory database.
  static Result<std::unique_ptr<SqliteBackend>> open(std::string path, WalCheckpointLimits limits = {});
  // Stops the checkpoint thread (a checkpoint under way is finished first).
  ~SqliteBackend() override;
  SqliteBackend(const SqliteBackend&) = delete;
  SqliteBackend& operator=(const SqliteBackend&) = delete;

  Result<void> write_batch(std::span<const KeyedRecord> records) override;
  Result<std::uint64_t> fold_rollups() override;
  bool folds_rollups_later() const override { return true; }
  Result<void> checkpoint_wal() override;
  Result<std::uint64_t> prune_before(double cutoff, std::uint64_t limit, bool fold_first) override;
  Result<void> prune_second_rollups(double cutoff) override;
  Result<StatsReport> stats(const StatsQuery& query) override;
  Result<SeriesReport> series(const SeriesQuery& query) override;
  Result<std::string> installation_secret(const std::string& candidate) override;

  // How many folds wrote the sums kept in memory instead of reading the calls back.
  std::uint64_t folds_from_memory() const { return folds_from_memory_; }
  // How many forced (TRUNCATE) checkpoints the writer ran, stopped short or not.
  std::uint64_t forced_checkpoints() const { return forced_checkpoints_; }
  // How many PASSIVE checkpoints the checkpoint thread ran.
  std::uint64_t passive_checkpoints() const;
  // How many times the writer held a commit for the checkpoint thread's final round, and
  // how many of those holds ended at hold_limit before the round did.
  std::uint64_t writer_holds() const;
  std::uint64_t writer_holds_cut_short() const;
  // How many times the writer's WAL started over from its beginning.
  std::uint64_t wal_restarts() const;
  // Whether the checkpoint thread holds a connection (tests).
  bool checkpoint_thread_has_connection() const;
  // Waits until the checkpoint thread has nothing to do (tests).
  void wait_for_checkpoint_thread() const;

 private:
  struct Connection {
    explicit Connection(sqlite::Database database) : db(std::move(database)) {}
    std::mutex mutex;  // one user at a time (the handles are opened without SQLite's mutex)
    sqlite::Database db;
  };

  // The WAL as the writer's last commit left it (SQLite's WAL hook), and the checkpoint
  // thread that copies it. Lives as long as the backend: a reopened writer connection
  // reports to the same one.
  struct WalWatch {
    explicit WalWatch(int idle_pages) : idle_pages(idle_pages) {}
    const int idle_pages;
    mutable std::mutex mutex;  // guards the fields up to `thread`
    std::condition_variable changed;
    int frames = 0;  // in the WAL after the writer's last commit
    // The WAL's frames when the last checkpoint ran (0 once the WAL starts over): the next
    // is asked for idle_pages frames later, so frames a reader's snapshot kept from being
    // copied are not tried again at every commit.
    int checked = 0;
    std::uint64_t restarts = 0;  // times the WAL started over: a checkpoint's count of an older WAL is stale
    bool due = false;      // the checkpoint thread is asked for a PASSIVE checkpoint
    bool running = false;  // it runs one
    bool stopping = false;
    // The hold of the writer's next commit for the final round: asked by the checkpoint
    // thread, held by the writer (between its rounds) until the thread sets it back to none.
    enum class Hold { none, asked, held } hold = Hold::none;
    std::uint64_t writer_holds = 0;
    std::uint64_t writer_holds_cut_short = 0;
    std::uint64_t writer_opens = 0;  // the thread reopens its connection when the writer was reopened
    // The writer gave up its connection (the file was moved, replaced or failed): the thread
    // must close its own before the writer opens the path again. Were it still open on the
    // old file, its rounds would copy the new file's commits (in the WAL the two share at
    // the path) into the old one and mark them copied, and the writer's next commit would
    // start the WAL over without them.
    bool writer_gone = false;
    // The thread has (or is opening) a connection: discard_writer waits until it has none.
    bool thread_connection = false;
    std::uint64_t passive_checkpoints = 0;
    std::thread thread;
    // Writer thread only: after a TRUNCATE that readers stopped short, when the next may
    // run, and the wait after it if it is stopped short too (0: forced_retry).
    std::chrono::steady_clock::time_point next_forced;
    std::chrono::milliseconds forced_backoff{0};
  };

  struct Writer {
    std::shared_ptr<Connection> connection;
    std::optional<sqlite::Statement> insert;  // prepared on connection->db; finalized first
    // The histogram rows as this connection last committed them, and the data_version
    // they go with: another connection's commit (a second process on the same file)
    // changes it, and then the rows are read back again.
    sqlite::HistogramRowCache histograms;
    std::int64_t data_version = -1;
    // The calls this connection committed since its last fold, summed (fold from memory);
    // empty when a call could not be summed (the fold then reads the rows back, and
    // reports what failed). `stored` is the current batch's: indexes and seqs of the
    // records its transaction really inserted, summed once it commits.
    std::optional<sqlite::CommittedRollups> committed;
    std::vector<std::pair<std::size_t, std::int64_t>> stored;
  };

  SqliteBackend(std::string path, WalCheckpointLimits limits) : path_(std::move(path)), wal_limits_(limits) {}
  bool in_memory() const { return path_ == ":memory:"; }

  static int note_wal_frames(void* watch, sqlite3* db, const char* schema, int frames);
  // A field of the WAL watch read under its mutex (T{} for an in-memory database: no watch).
  template <typename T>
  T read_wal(T WalWatch::*field) const;
  // The checkpoint thread: a PASSIVE checkpoint on its own connection whenever asked.
  void run_checkpoints();
  // One PASSIVE checkpoint on the checkpoint thread's connection.
  struct PassiveRound {
    int code;
    int log_frames;     // in the WAL when it started
    int copied_frames;  // copied into the database file so far (all of them when equal)
  };
  static PassiveRound run_passive(sqlite::Database& db);
  static void sync_database_file(sqlite::Database& db);
  // Asks the writer to hold its next commit, and runs the final round meanwhile.
  PassiveRound run_held_round(sqlite::Database& db, std::unique_lock<std::mutex>& lock);
  void stop_checkpoint_thread();
  Result<void> open_writer();
  // The writer connection, reopened first if a failure discarded it.
  Result<void> writer_ready() { return writer_ ? Result<void>{} : open_writer(); }
  // Refuses a file that was deleted or renamed under the writer.
  Result<void> check_not_moved(Connection& connection);
  Result<void> insert_all(std::span<const KeyedRecord> records);
  Result<std::uint64_t> fold_with_writer();
  // After a failed fold: whether the writer's connection still reads its file (the
  // failure was in the data), or must be reopened.
  bool writer_still_sound();
  Result<std::uint64_t> fold_in_transaction();
  Result<void> insert_in_transaction(std::span<const KeyedRecord> records);
  // Drops the histogram cache and the committed sums unless only this connection has
  // committed since they were filled.
  Result<void> check_histogram_cache();
  // Adds the records the batch's committed transaction inserted to writer_->committed.
  void sum_committed(std::span<const KeyedRecord> records);
  // Starts writer_->committed over, empty (after a fold, or at open).
  void restart_committed_sums();
  // File databases only: replaces a writer that failed, so a deleted, moved or broken
  // database file is reopened (or recreated) instead of failing forever.
  void discard_writer();

  Result<std::shared_ptr<Connection>> acquire_reader(std::uint64_t& generation);
  void release_reader(std::shared_ptr<Connection> reader, std::uint64_t generation);
  // Runs one read query on a pooled reader (stats, series).
  template <class Report, class Query>
  Result<Report> read(Result<Report> (*run)(sqlite::Database&, const Query&), const Query& query);

  const std::string path_;
  const WalCheckpointLimits wal_limits_;
  // File databases only; declared before the writer, so it outlives the writer connection
  // whose WAL hook points at it.
  std::unique_ptr<WalWatch> wal_;
  std::unique_ptr<Writer> writer_;  // touched by the writer thread only (after open)
  std::uint64_t folds_from_memory_ = 0;
  std::uint64_t forced_checkpoints_ = 0;
  // The in-memory database's single connection; set once at open, then never replaced.
  std::shared_ptr<Connection> memory_connection_;

  std::mutex readers_mutex_;
  std::vector<std::shared_ptr<Connection>> idle_readers_;
  std::uint64_t reader_generation_ = 0;  // bumped when the writer reopens the file
};

}  // namespace turnout::ledger
