#include "server/endpoints/fold_wait.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <memory>
#include <optional>

namespace turnout::server::endpoints {
namespace asio = boost::asio;

asio::awaitable<ledger::FoldOutcome> await_fold(Services& services, std::chrono::milliseconds limit) {
  auto executor = co_await asio::this_coro::executor;
  // Shared with the writer's callback, which may come after the wait gave up. The answer
  // is posted to this coroutine's executor (one thread per worker io_context), so the
  // timer and the outcome are only touched from that thread.
  struct Waiter {
    explicit Waiter(const asio::any_io_executor& executor) : timer(executor) {}
    asio::steady_timer timer;
    std::optional<ledger::FoldOutcome> outcome;
  };
  auto waiter = std::make_shared<Waiter>(executor);
  waiter->timer.expires_after(limit);
  services.ledger.request_fold([waiter, executor](ledger::FoldOutcome outcome) {
    asio::post(executor, [waiter, outcome = std::move(outcome)]() mutable {
      waiter->outcome = std::move(outcome);
      waiter->timer.cancel();
    });
  });
  boost::system::error_code ended;  // operation_aborted when the answer came first
  co_await waiter->timer.async_wait(asio::redirect_error(asio::use_awaitable, ended));
  if (waiter->outcome) {
    co_return *waiter->outcome;
  }
  co_return ledger::FoldOutcome{
      false, fmt::format("the ledger writer did not fold the roll-ups within {} ms", limit.count())};
}

}  // namespace turnout::server::endpoints
