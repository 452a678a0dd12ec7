#pragma once
// Internal to the upstream client: one HTTP/1.1 connection (plain or TLS) and the
// per-Client pool of idle keep-alive connections.
#include "common/io_deadline.hpp"
#include "upstream/client.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>

namespace turnout::upstream::detail {

using Clock = std::chrono::steady_clock;
using PlainStream = boost::beast::tcp_stream;
using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

// Which upstream a connection talks to; connections are only reused for the same one.
struct PoolKey {
  bool tls = false;
  std::string host;
  std::string port;
};

class Connection {
 public:
  // A TCP connection, wrapped in TLS when `tls` is given (not yet connected).
  Connection(boost::asio::any_io_executor executor, const Endpoint& endpoint,
             boost::asio::ssl::context* tls);

  PoolKey& key() { return key_; }
  const PoolKey& key() const { return key_; }
  bool is_tls() const { return std::holds_alternative<TlsStream>(stream_); }
  // The TCP layer, which carries the deadlines (beast closes the socket when one passes).
  boost::beast::tcp_stream& tcp();
  TlsStream* tls_stream() { return std::get_if<TlsStream>(&stream_); }

  // Calls `operation(stream)` with the concrete stream type and returns its result.
  template <class Operation>
  decltype(auto) visit(Operation&& operation) {
    return std::visit(std::forward<Operation>(operation), stream_);
  }

  // Bytes received but not yet parsed; persists between the messages of a connection.
  boost::beast::flat_buffer& buffer() { return buffer_; }
  // The deadline of the exchange's reads and writes once connected (the tcp_stream's own
  // expiry then stays "never"): one lazily re-armed timer per connection, not one armed
  // and cancelled per operation.
  IoDeadline& deadline() { return deadline_; }
  // The text of the request head being sent; kept so that its capacity serves the
  // connection's next requests without an allocation.
  std::string& request_head() { return request_head_; }

  // True when an idle connection shows signs of having been closed by the peer (readable:
  // EOF, reset or unsolicited bytes). A server never speaks first in HTTP/1.1, so such a
  // connection must not carry a request.
  bool peer_closed_while_idle();

  void close();

  Clock::time_point idle_since{};
  bool reused = false;  // has carried an earlier exchange

 private:
  PoolKey key_;
  std::variant<PlainStream, TlsStream> stream_;
  IoDeadline deadline_;  // watches stream_'s socket: declared after it
  boost::beast::flat_buffer buffer_;
  std::string request_head_;
};

struct PoolLimits {
  std::size_t max_idle_per_upstream = 64;
  Clock::duration max_idle_age = std::chrono::seconds(60);
  // Connections idle longer than this are probed (a poll() syscall) before reuse. Under
  // load a connection comes back within milliseconds, and one the peer closed that soon
  // fails its write, yields EOF before any response byte, or answers 408 (bytes the server
  // sent while it sat idle), which the client resends once on a fresh connection (the
  // keep-alive race): nothing is lost by not probing it, and the probe was a syscall per
  // call (issue 16). nginx does not probe at all. The connection's own buffer is always
  // empty here: can_reuse() pools only connections with nothing left over.
  Clock::duration probe_after_idle = std::chrono::seconds(1);
};

// Idle keep-alive connections by upstream, most recently used last. Single-threaded.
class ConnectionPool {
 public:
  explicit ConnectionPool(PoolLimits limits = {}) : limits_(limits) {}

  // The most recently used idle connection to `endpoint` not known to be closed, or null.
  std::unique_ptr<Connection> take(const Endpoint& endpoint, Clock::time_point now);
  // Keeps a connection whose last response was read completely and allows keep-alive.
  void give_back(std::unique_ptr<Connection> connection, Clock::time_point now);
  void close_all();
  std::size_t idle_count() const;

 private:
  struct KeyLess {
    using is_transparent = void;
    static auto view(const PoolKey& k) { return std::tuple(k.tls, std::string_view(k.host), std::string_view(k.port)); }
    static auto view(const Endpoint& e) { return std::tuple(e.tls, std::string_view(e.host), std::string_view(e.port)); }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const { return view(a) < view(b); }
  };
  using IdleList = std::deque<std::unique_ptr<Connection>>;  // oldest first

  void drop_expired(IdleList& idle, Clock::time_point now) const;

  PoolLimits limits_;
  std::map<PoolKey, IdleList, KeyLess> idle_;
};

}  // namespace turnout::upstream::detail
