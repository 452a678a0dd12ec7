#pragma once
// The backend-neutral Ledger: append() only enqueues; one writer thread takes everything
// queued, stores it in one transaction (group commit) and then reports durability to
// each caller. A batch the database does not take goes to the local spool
// (spool/spool.hpp), fsync'd, before its callers hear "durable"; later batches follow it
// there until the database takes writes again and the spool is drained into it. Records
// in neither (no spool, or the spool failing or full) stay in a bounded in-memory backlog,
// their callers told of the failure, and are retried, so health() recovers by itself.
#include "ledger/backend.hpp"
#include "ledger/journal/journal.hpp"
#include "ledger/ledger.hpp"
#include "ledger/spool/spool.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace turnout::ledger {

class QueuedLedger final : public Ledger {
 public:
  // Reads (or creates) the installation secret through `backend`, opens a spool left at
  // options.spool_path (its records are drained first), replays the hand-off journals of
  // ledger file `journal_base` that no live process holds ("" : none kept), and starts
  // the writer.
  static Result<std::unique_ptr<QueuedLedger>> open(std::unique_ptr<Backend> backend, const LedgerOptions& options,
                                                    const std::string& journal_base = {});
  ~QueuedLedger() override;
  QueuedLedger(const QueuedLedger&) = delete;
  QueuedLedger& operator=(const QueuedLedger&) = delete;

  void append(CallRecord record, DurableCallback on_durable) override;
  void append_batch(std::vector<CallRecord> records, DurableCallback on_durable) override;
  std::shared_ptr<Journal> open_journal() override;
  void append_keyed(std::vector<KeyedRecord> records, std::shared_ptr<Journal> journal, std::uint64_t last_seq,
                    DurableCallback on_durable) override;
  void request_fold(FoldCallback on_folded) override;
  Result<StatsReport> stats(const StatsQuery& query) override;
  Result<SeriesReport> series(const SeriesQuery& query) override;
  LedgerHealth health() const override;
  const std::string& installation_secret() const override { return installation_secret_; }
  void close() override;
  std::vector<std::string> open_notes() const override;

 private:
  QueuedLedger(std::unique_ptr<Backend> backend, const LedgerOptions& options, std::string installation_secret,
               std::unique_ptr<Spool> spool, std::string journal_base, const ReplayReport& replayed);

  struct Pending {
    KeyedRecord keyed;           // key "" : the writer assigns one
    DurableCallback on_durable;  // set on the last record of an append_batch only
    bool ends_batch = true;      // a round never stops before a batch's last record
    // On the last record of an append_keyed: the journal told once the batch is durable.
    std::shared_ptr<Journal> journal;
    std::uint64_t journal_seq = 0;
  };
  // A journal and the sequence number up to which this round's records make it durable.
  struct JournalMark {
    std::shared_ptr<Journal> journal;
    std::uint64_t seq = 0;
  };

  // What the writer thread owns between rounds.
  struct WriterState {
    std::vector<KeyedRecord> unwritten;  // backlog of records in neither store, then this round's
    std::vector<DurableCallback> callbacks;  // for this round's batches only
    // For the journaled batches among `unwritten` (kept until they are durable).
    std::vector<JournalMark> journal_marks;
    std::uint64_t next_key = 0;
    std::uint64_t dropped = 0;  // records given up because the backlog was full
    std::chrono::steady_clock::time_point next_prune;  // retention: when to look again
    bool pruning_records = false;  // a retention pass is part-way through expired records
    // The spool holds records: batches go there too (in order, and without paying for a
    // database that is away on every round) until a drain empties it.
    bool spooling = false;
    std::chrono::steady_clock::time_point next_drain;
    std::string database_error;  // the last failure of each store, "" once it works again
    std::string spool_error;
    // Roll-ups folded after the commit (Backend::fold_rollups): records stored since the
    // last fold, when the next fold is due, and the readers' requests this round answers.
    std::uint64_t unfolded = 0;
    std::chrono::steady_clock::time_point next_fold;
    std::vector<FoldCallback> fold_waiters;
    // The last fold's failure ("" once one succeeds), and when one last succeeded: a fold
    // that keeps failing is reported through health() with how far the roll-ups lag.
    std::string fold_error;
    std::chrono::steady_clock::time_point folded_at;
    // How long after a failed fold the next is tried: retry_interval, doubled per failure
    // up to a minute, whatever the number of calls waiting.
    std::chrono::steady_clock::duration fold_retry_delay{};
    // Journals a killed process left that could not be replayed (or are damaged): why, in
    // health(); whether (and when) to try again.
    std::string replay_problem;
    bool replay_retry = false;
    std::chrono::steady_clock::time_point next_replay;
    // As fold_retry_delay: retry_interval, doubled per failed try up to a minute (a file
    // that cannot be read, or a record the database refuses, fails the same way each time).
    std::chrono::steady_clock::duration replay_retry_delay{};
  };

  void run_writer();
  // Moves up to max_batch queued records (more to finish an append_batch) into `state`;
  // true when the ledger is closing
  // and nothing is left in the queue (the writer's last round).
  bool take_queued(WriterState& state);
  void write_round(WriterState& state);
  // Moves the spool's oldest records into the database, one batch per call.
  void drain_spool(WriterState& state);
  void update_health(const WriterState& state);
  // Counts `stored` records as written to the database (not yet in the roll-ups).
  void note_stored(WriterState& state, std::size_t stored) const;
  // Folds the roll-ups when a reader asked, when enough calls wait, when the oldest
  // waits longer than rollup_fold_interval, or when `now_anyway` (the last round).
  void fold_when_due(WriterState& state, bool now_anyway);
  // What a reader of the roll-ups is told after this round's fold.
  FoldOutcome fold_outcome(const WriterState& state) const;
  // When due: drops expired second roll-ups, and (retention) deletes one chunk of expired
  // raw records, so a large backlog of them is worked off between write rounds instead
  // of stalling them.
  void prune_expired(WriterState& state);
  // When due and the database takes writes: replays the orphaned journals the open could
  // not store, so their calls reach the ledger during this run, not only at the next start.
  void retry_replay(WriterState& state);

  std::unique_ptr<Backend> backend_;
  const LedgerOptions options_;
  const std::string key_prefix_;  // random per open, so keys of concurrent writers never collide
  const std::string installation_secret_;
  std::unique_ptr<Spool> spool_;  // null without options.spool_path; the writer thread's
  const std::string journal_base_;  // the ledger file journals sit beside; "" : none kept
  const std::vector<std::string> open_notes_;  // the replay at open, for the start-up log
  const std::string replay_problem_at_open_;
  const bool replay_retry_at_open_;

  mutable std::mutex mutex_;  // guards the fields below
  std::condition_variable queued_;
  std::vector<Pending> queue_;
  bool closing_ = false;
  // Readers' fold requests (request_fold), taken by the writer's next round; answered at
  // once instead while fold_trouble_ says why a fold would not come promptly (a write
  // error, records waiting for retry, a failing fold), or once the writer has stopped.
  struct FoldRequest {
    std::uint64_t ticket = 0;  // appended_ when it was made: answered once taken_ reaches it
    FoldCallback on_folded;
  };
  std::vector<FoldRequest> fold_requests_;
  std::uint64_t appended_ = 0;  // records queued since the open
  std::uint64_t taken_ = 0;     // records the writer has taken from the queue
  std::string fold_trouble_;
  bool writer_stopped_ = false;
  LedgerHealth health_;
  std::vector<std::shared_ptr<Journal>> journals_;  // handed out by open_journal; cleared at close
  std::size_t journals_missing_ = 0;  // open_journal calls that found no journal file
  std::string journal_open_error_;    // the last one's reason

  std::once_flag close_once_;
  std::thread writer_;
};

}  // namespace turnout::ledger
