#pragma once
// The hand-off from one event-loop thread to the ledger writer. The calls that finish in
// one turn of the loop (the handlers that were ready together) give their records to the
// writer together, in one append_batch: one wake-up of the writer for the lot instead of
// one per call, one transaction for them, and one wake-up of this loop when they are
// durable, which then resumes each of their coroutines. The flush is posted behind the
// handlers already ready, so it adds no wait of its own: a call's record reaches the
// writer before this loop next waits for I/O.
//
// With a hand-off journal (ledger/journal/journal.hpp, a file-backed SQLite ledger) the
// flush first writes the turn's records without a governance hold to the journal, in one
// pwrite, and resumes their calls at once: the records are safe from a SIGKILL from then
// on, and still reach the writer in the same hand-off. A call with a hold still waits for
// the commit (its settlement frees slots and budget the client's next call must see), and
// so does every call of a turn the journal cannot take (full, or a failed write): then the
// hand-off is exactly as without a journal.
#include "common/result.hpp"
#include "ledger/ledger.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <functional>
#include <memory>
#include <vector>

namespace turnout::server {

class LedgerOutbox {
 public:
  LedgerOutbox(boost::asio::any_io_executor executor, ledger::Ledger& ledger)
      : executor_(std::move(executor)), ledger_(ledger), journal_(ledger.open_journal()) {}
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
  void flush_through_journal();
  // Tells stderr when the journal's writes start failing (and when they work again).
  void note_journal_write(bool written);

  boost::asio::any_io_executor executor_;
  ledger::Ledger& ledger_;
  std::shared_ptr<ledger::Journal> journal_;  // null: every call waits for its commit
  std::vector<ledger::CallRecord> records_;  // this turn's, not yet handed to the writer
  std::vector<Resume> waiting_;              // their coroutines, in the same order
  bool flush_posted_ = false;
  bool journal_failing_ = false;  // the last write failed (said once on stderr)
};

}  // namespace turnout::server
