#pragma once
// The one TCP accept loop, shared by the gateway's HTTP server and the mock upstream.
// At a connection limit, or out of file descriptors or kernel memory (EMFILE, ENFILE,
// ENOBUFS, ENOMEM), it backs off before the next accept: retrying at once would fail the same way and spin a core
// exactly when the machine is short of resources, while the connections already open
// still need it.
#include "common/result.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace turnout::listener {

class Acceptor {
 public:
  explicit Acceptor(boost::asio::any_io_executor executor,
                    std::chrono::milliseconds resource_backoff = std::chrono::milliseconds(50));

  // Binds and listens; returns the bound port (port 0 picks a free one).
  Result<std::uint16_t> listen(const std::string& host, std::uint16_t port);

  // Accepts until close(): each connection's socket is created on `next_executor()` and
  // handed to `on_accept`. Runs on the executor given at construction. While `at_capacity`
  // (when given) returns true, nothing is accepted: new clients wait in the kernel's listen
  // backlog, and it is checked again after each back-off interval (no busy loop).
  boost::asio::awaitable<void> run(std::function<boost::asio::any_io_executor()> next_executor,
                                   std::function<void(boost::asio::ip::tcp::socket)> on_accept,
                                   std::function<bool()> at_capacity = {});

  // Stops accepting; run() returns. Call on the acceptor's executor.
  void close();

 private:
  boost::asio::ip::tcp::acceptor acceptor_;
  std::chrono::milliseconds resource_backoff_;
  // How often a full server looks again whether a connection has closed.
  static constexpr std::chrono::milliseconds kCapacityBackoff{10};
};

}  // namespace turnout::listener
