#include "server/ledger_outbox.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>

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

void LedgerOutbox::flush() {
  flush_posted_ = false;
  if (records_.empty()) return;
  auto waiting = std::make_shared<std::vector<Resume>>(std::move(waiting_));
  waiting_.clear();
  std::vector<ledger::CallRecord> records = std::move(records_);
  records_.clear();
  // Runs on the writer thread: only hands back to this loop, once for the whole batch.
  ledger_.append_batch(std::move(records), [executor = executor_, waiting](Result<void> outcome) {
    asio::post(executor, [waiting, outcome = std::move(outcome)] {
      for (const Resume& resume : *waiting) resume(outcome);
    });
  });
}

void LedgerOutbox::hand_over_held() {
  if (records_.empty()) return;
  waiting_.clear();  // their coroutines were destroyed with the loop
  ledger_.append_batch(std::move(records_), {});
  records_.clear();
}

}  // namespace turnout::server
