#pragma once
// Runs blocking work (a ledger read) on the gateway's blocking pool and resumes the
// calling coroutine on its own executor with the result, so the event loop never waits
// on a database.
#include "server/services.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <utility>

namespace turnout::server::endpoints {

template <class Value, class Work>
boost::asio::awaitable<Value> on_blocking_pool(Services& services, Work work) {
  namespace asio = boost::asio;
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Value)>(
      [&services, work = std::move(work)](auto handler) mutable {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        asio::post(*services.blocking_pool, [work = std::move(work), shared]() mutable {
          Value result = work();
          auto executor = asio::get_associated_executor(*shared);
          asio::post(executor, [shared, result = std::move(result)]() mutable { (*shared)(std::move(result)); });
        });
      },
      asio::use_awaitable);
}

}  // namespace turnout::server::endpoints
