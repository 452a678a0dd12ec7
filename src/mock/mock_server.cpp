#include "mock/mock_server.hpp"

#include "listener/acceptor.hpp"

#include "common/clock.hpp"
#include "mock/mock_connection.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

namespace turnout::mock {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;

namespace {

void report_exception(std::exception_ptr error) {
  if (!error) return;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mock-upstream: connection error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "mock-upstream: connection error\n");
  }
}

net::awaitable<void> serve_connection(tcp::socket socket, MockState& state, std::size_t max_body_bytes) {
  Connection connection(std::move(socket), state, max_body_bytes);
  co_await connection.serve();
}

}  // namespace

struct MockServer::Impl {
  Impl(const ServerOptions& opts, MockSettings startup)
      : options(opts), state(std::move(startup), opts.recording), io(static_cast<int>(opts.threads)),
        acceptor(io.get_executor()) {}

  Result<void> listen() {
    boost::system::error_code ec;
    net::ip::make_address(options.host, ec);
    if (ec) return make_error(fmt::format("--host: '{}' is not an IP address", options.host));
    auto port = acceptor.listen(options.host, options.port);
    if (!port) return port.error();
    bound_port = *port;
    return {};
  }

  void run() {
    auto next_executor = [this]() -> net::any_io_executor { return net::make_strand(io); };
    auto on_accept = [this](tcp::socket socket) {
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      const auto executor = socket.get_executor();
      net::co_spawn(executor, serve_connection(std::move(socket), state, options.max_body_bytes), report_exception);
    };
    net::co_spawn(io, acceptor.run(next_executor, on_accept), report_exception);
    threads.reserve(options.threads);
    for (unsigned i = 0; i < options.threads; ++i) threads.emplace_back([this] { io.run(); });
  }

  void stop() {
    io.stop();
    for (auto& t : threads)
      if (t.joinable()) t.join();
    threads.clear();
  }

  const ServerOptions options;
  MockState state;  // outlives io: pending connections refer to it
  net::io_context io;
  listener::Acceptor acceptor;  // the gateway's accept loop, EMFILE back-off included
  std::uint16_t bound_port = 0;
  std::vector<std::thread> threads;
};

Result<std::unique_ptr<MockServer>> MockServer::start(const ServerOptions& options, MockSettings startup) {
  if (options.threads == 0) return make_error("--threads: must be at least 1");
  auto impl = std::make_unique<Impl>(options, std::move(startup));
  if (auto listening = impl->listen(); !listening) return listening.error();
  impl->run();
  return std::unique_ptr<MockServer>(new MockServer(std::move(impl)));
}

MockServer::MockServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MockServer::~MockServer() { stop(); }
std::uint16_t MockServer::port() const { return impl_->bound_port; }
const std::string& MockServer::host() const { return impl_->options.host; }
MockState& MockServer::state() { return impl_->state; }
void MockServer::stop() { impl_->stop(); }

}  // namespace turnout::mock
