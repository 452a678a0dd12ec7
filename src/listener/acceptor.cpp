#include "listener/acceptor.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cerrno>

namespace turnout::listener {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

bool out_of_resources(const boost::system::error_code& ec) {
  if (ec.category() != boost::system::system_category()) return false;
  const int e = ec.value();
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

}  // namespace

Acceptor::Acceptor(asio::any_io_executor executor, std::chrono::milliseconds resource_backoff)
    : acceptor_(std::move(executor)), resource_backoff_(resource_backoff) {}

Result<std::uint16_t> Acceptor::listen(const std::string& host, std::uint16_t port) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return make_error("invalid listen address '" + host + "': " + ec.message());
  const tcp::endpoint endpoint(address, port);
  if (acceptor_.open(endpoint.protocol(), ec); ec) return make_error("cannot open socket: " + ec.message());
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (acceptor_.bind(endpoint, ec); ec)
    return make_error("cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  if (acceptor_.listen(asio::socket_base::max_listen_connections, ec); ec)
    return make_error("listen failed: " + ec.message());
  return acceptor_.local_endpoint().port();
}

asio::awaitable<void> Acceptor::run(std::function<asio::any_io_executor()> next_executor,
                                    std::function<void(tcp::socket)> on_accept, std::function<bool()> at_capacity) {
  asio::steady_timer backoff(acceptor_.get_executor());
  while (acceptor_.is_open()) {
    if (at_capacity && at_capacity()) {
      backoff.expires_after(kCapacityBackoff);
      co_await backoff.async_wait(use_tuple);
      continue;
    }
    auto [ec, socket] = co_await acceptor_.async_accept(next_executor(), use_tuple);
    if (!ec) {
      on_accept(std::move(socket));
      continue;
    }
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (out_of_resources(ec)) {
      backoff.expires_after(resource_backoff_);
      co_await backoff.async_wait(use_tuple);
    }
    // Anything else (a connection reset before it was accepted): take the next one.
  }
}

void Acceptor::close() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

}  // namespace turnout::listener
