#pragma once
// The hand-off from one event-loop thread to the ledger writer. The calls that finish in
// one turn of the loop (the handlers that were ready together) give their records to the
// writer together, in one append_batch: one wake-up of the writer for the lot instead of
// one per call, one transaction for them, and one wake-up of this loop when they are
// durable, which then resumes each of their coroutines. The flush is posted behind the
// handlers already ready, so it adds no wait of its own: a call's record reaches the
// writer before this loop next waits for I/O.
#include "common/result.hpp"
#include "ledger/ledger.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <functional>
#include <vector>

namespace turnout::server {

class LedgerOutbox {
 public:
  LedgerOutbox(boost::asio::any_io_executor executor, ledger::Ledger& ledger)
      : executor_(std::move(executor)), ledger_(ledger) {}
  LedgerOutbox(const LedgerOutbox&) = delete;
  LedgerOutbox& operator=(const LedgerOutbox&) = delete;
  ~LedgerOutbox() { hand_over_held(); }

  // Resumes (on this outbox's loop) once the record is durable, or with the writer's error.
  // Call only from the outbox's own event-loop thread.
  boost::asio::awaitable<Result<void>> append(ledger::CallRecord record);

  // Once the loop has stopped: gives the writer records whose flush never ran (their
  // coroutines are gone with the loop; the records must not be).
  void hand_over_held();

 private:
  using Resume = std::function<void(Result<void>)>;
  void flush();

  boost::asio::any_io_executor executor_;
  ledger::Ledger& ledger_;
  std::vector<ledger::CallRecord> records_;  // this turn's, not yet handed to the writer
  std::vector<Resume> waiting_;              // their coroutines, in the same order
  bool flush_posted_ = false;
};

}  // namespace turnout::server
