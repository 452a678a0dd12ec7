#pragma once
// The backend-neutral Ledger: append() only enqueues; one writer thread takes everything
// queued, stores it in one transaction (group commit) and then reports durability to
// each caller. Failed records stay in a bounded backlog and are retried, so a transient
// fault (disk full, database file replaced) loses nothing and health() recovers by itself.
#include "ledger/backend.hpp"
#include "ledger/ledger.hpp"

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
  QueuedLedger(std::unique_ptr<Backend> backend, const LedgerOptions& options);
  ~QueuedLedger() override;
  QueuedLedger(const QueuedLedger&) = delete;
  QueuedLedger& operator=(const QueuedLedger&) = delete;

  void append(CallRecord record, DurableCallback on_durable) override;
  Result<StatsReport> stats(const StatsQuery& query) override;
  Result<SeriesReport> series(const SeriesQuery& query) override;
  LedgerHealth health() const override;
  void close() override;

 private:
  struct Pending {
    CallRecord record;
    DurableCallback on_durable;
  };

  // What the writer thread owns between rounds.
  struct WriterState {
    std::vector<KeyedRecord> unwritten;  // backlog of failed records, then this round's
    std::vector<DurableCallback> callbacks;  // for this round's records only
    std::uint64_t next_key = 0;
    std::uint64_t dropped = 0;  // records given up because the backlog was full
    std::chrono::steady_clock::time_point next_prune;  // retention: when to look again
    bool pruning_records = false;  // a retention pass is part-way through expired records
  };

  void run_writer();
  // Moves up to max_batch queued records into `state`; true when the ledger is closing
  // and nothing is left in the queue (the writer's last round).
  bool take_queued(WriterState& state);
  void write_round(WriterState& state);
  void record_health(const Result<void>& written, const WriterState& state);
  // When due: drops expired second roll-ups, and (retention) deletes one chunk of expired
  // raw records, so a large backlog of them is worked off between write rounds instead
  // of stalling them.
  void prune_expired(WriterState& state);

  std::unique_ptr<Backend> backend_;
  const LedgerOptions options_;
  const std::string key_prefix_;  // random per open, so keys of concurrent writers never collide

  mutable std::mutex mutex_;  // guards the fields below
  std::condition_variable queued_;
  std::vector<Pending> queue_;
  bool closing_ = false;
  LedgerHealth health_;

  std::once_flag close_once_;
  std::thread writer_;
};

}  // namespace turnout::ledger
