#include "server/ledger_outbox.hpp"

#include "ledger/journal/journal.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <system_error>

namespace turnout::server {
namespace asio = boost::asio;

asio::awaitable<Result<void>> LedgerOutbox::append(ledger::CallRecord record) {
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Result<void>)>(
      [this, &record](auto handler) {
        // std::function needs a copyable target; the coroutine's handler is move-only.
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        records_.push_back(std::move(record));
        waiting_.push_back([shared](Result<void> outcome) { (*shared)(std::move(outcome)); });
        if (!flush_posted_) {
          flush_posted_ = true;
          asio::post(executor_, [this] { flush(); });
        }
      },
      asio::use_awaitable);
}

namespace {

// Hands `waiting` back to the loop with the writer's outcome; runs on the writer thread.
ledger::Ledger::DurableCallback resume_when_durable(asio::any_io_executor executor,
                                                    std::shared_ptr<std::vector<std::function<void(Result<void>)>>> waiting) {
  return [executor = std::move(executor), waiting = std::move(waiting)](Result<void> outcome) {
    asio::post(executor, [waiting, outcome = std::move(outcome)] {
      for (const auto& resume : *waiting) resume(outcome);
    });
  };
}

}  // namespace

void LedgerOutbox::flush() {
  flush_posted_ = false;
  if (records_.empty()) return;
  if (journal_) {
    flush_through_journal();
    return;
  }
  auto waiting = std::make_shared<std::vector<Resume>>(std::move(waiting_));
  waiting_.clear();
  std::vector<ledger::CallRecord> records = std::move(records_);
  records_.clear();
  // Runs on the writer thread: only hands back to this loop, once for the whole batch.
  ledger_.append_batch(std::move(records), resume_when_durable(executor_, std::move(waiting)));
}

void LedgerOutbox::flush_through_journal() {
  // The records without a hold first, numbered consecutively, so one pwrite frames them
  // all; the held ones after them, keyed by the journal too (never written to it).
  std::vector<ledger::KeyedRecord> keyed;
  keyed.reserve(records_.size());
  auto answered = std::make_shared<std::vector<Resume>>();
  auto waiting = std::make_shared<std::vector<Resume>>();
  for (std::size_t i = 0; i < records_.size(); ++i) {
    if (!records_[i].hold_id.empty()) continue;
    keyed.push_back(ledger::KeyedRecord{{}, std::move(records_[i])});
    answered->push_back(std::move(waiting_[i]));
  }
  const std::size_t journaled = keyed.size();
  for (std::size_t i = 0; i < records_.size(); ++i) {
    if (records_[i].hold_id.empty()) continue;
    keyed.push_back(ledger::KeyedRecord{{}, std::move(records_[i])});
    waiting->push_back(std::move(waiting_[i]));
  }
  records_.clear();
  waiting_.clear();
  std::uint64_t first_seq = 0, last_seq = 0;
  for (ledger::KeyedRecord& record : keyed) {
    last_seq = journal_->stamp(record);
    if (first_seq == 0) first_seq = last_seq;
  }
  const bool in_journal =
      journaled > 0 && journal_->write(std::span<const ledger::KeyedRecord>(keyed.data(), journaled), first_seq);
  if (journaled > 0) note_journal_write(in_journal);
  if (!in_journal) {
    // The journal could not take them: these calls wait for the commit too.
    waiting->insert(waiting->end(), std::make_move_iterator(answered->begin()), std::make_move_iterator(answered->end()));
    answered->clear();
  }
  ledger_.append_keyed(std::move(keyed), journal_, last_seq,
                       waiting->empty() ? ledger::Ledger::DurableCallback() : resume_when_durable(executor_, waiting));
  if (!answered->empty()) {
    // Posted, not run here: a resumed call must not run inside this flush.
    asio::post(executor_, [answered] {
      for (const Resume& resume : *answered) resume(Result<void>());
    });
  }
}

void LedgerOutbox::note_journal_write(bool written) {
  const int error = written ? 0 : journal_->write_errno();
  // Said once when writes start failing (a full disk, an I/O error), and once when they work
  // again: not per turn. A full journal (waiting for commits) is not a failure.
  if (error != 0 && !journal_failing_) {
    std::cerr << fmt::format("turnout: ledger journal '{}': a write failed: {}; this loop's calls wait for the "
                             "commit until a write works again\n",
                             journal_->path(), std::error_code(error, std::generic_category()).message());
  } else if (written && journal_failing_) {
    std::cerr << fmt::format("turnout: ledger journal '{}': writes work again\n", journal_->path());
  }
  if (error != 0) journal_failing_ = true;
  if (written) journal_failing_ = false;
}

void LedgerOutbox::hand_over_held() {
  // Not journaled: after the loop stopped, no call waits for an answer.
  if (records_.empty()) return;
  waiting_.clear();  // their coroutines were destroyed with the loop
  ledger_.append_batch(std::move(records_), {});
  records_.clear();
}

}  // namespace turnout::server
