// What one upstream exchange shares between the client, which writes the request and
// reads the head, and the ResponseStream, which reads the body. Internal to upstream.
#pragma once

#include "upstream/client.hpp"
#include "upstream/connection.hpp"
#include "upstream/failure.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <fmt/format.h>

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace turnout::upstream {
namespace detail {

// Errors are values here (exceptions would cost a throw per failed call).
constexpr auto nothrow_awaitable = boost::asio::as_tuple(boost::asio::use_awaitable);

// Per-stream read buffer: SSE events are a few hundred bytes, and thousands of streams may
// be open at once, so this is kept small.
constexpr std::size_t kStreamChunkBytes = 8u << 10;

constexpr Clock::time_point kNever = Clock::time_point::max();

inline Clock::time_point deadline_after(Clock::time_point start, Clock::duration limit) {
  return limit > Clock::duration::zero() ? start + limit : kNever;
}

inline void expire_at(boost::beast::tcp_stream& tcp, Clock::time_point deadline) {
  if (deadline == kNever)
    tcp.expires_never();
  else
    tcp.expires_at(deadline);
}

// Ends the deadline of the read or write that `connection.deadline().begin()` started and
// returns its error; one the deadline cut reports beast's timeout error, as when the
// tcp_stream's own timer did it.
inline boost::system::error_code end_under_deadline(Connection& connection, boost::system::error_code error) {
  connection.deadline().end();
  if (error && connection.deadline().expired()) return boost::beast::error::timeout;
  return error;
}

// A connection may carry another request only after a complete, keep-alive response
// with nothing left over in its buffer.
template <class Parser>
bool can_reuse(const Parser& parser, Connection& connection) {
  return parser.is_done() && parser.get().keep_alive() && !parser.need_eof() &&
         connection.buffer().size() == 0 && connection.tcp().socket().is_open();
}

}  // namespace detail

struct ResponseStream::State {
  std::weak_ptr<detail::ConnectionPool> pool;  // where a completed connection goes back to
  std::unique_ptr<detail::Connection> connection;
  std::optional<boost::beast::http::response_parser<boost::beast::http::buffer_body>> parser;
  detail::Clock::duration idle_timeout{};
  detail::Clock::time_point idle_since{};  // the last progress the caller noted
  detail::Clock::time_point total_deadline{};
  std::uint64_t max_body_bytes = 0;
  std::uint64_t body_bytes = 0;  // delivered so far
  detail::Clock::duration total_limit{};
  unsigned status = 0;
  std::string content_type;
  std::optional<std::string> retry_after;
  bool cancelled = false;
  std::optional<Failure> failure;  // sticky: later next() calls repeat it
  std::array<char, detail::kStreamChunkBytes> chunk;

  bool finished() const { return !connection; }

  void complete() {
    if (detail::can_reuse(*parser, *connection)) {
      if (auto live_pool = pool.lock()) {
        live_pool->give_back(std::move(connection), detail::Clock::now());
        return;
      }
    }
    connection.reset();
  }

  // Failure messages name the upstream from the connection's own pool key: the caller's
  // Endpoint may not outlive the stream, and a copy of it would carry the provider's key
  // (Endpoint::fixed_fields) into every stream. Called only while `connection` is held.
  const detail::PoolKey& upstream() const { return connection->key(); }

  Failure too_large() const {
    return {FailureKind::too_large, fmt::format("the response body from {}:{} is larger than {} bytes",
                                                upstream().host, upstream().port, max_body_bytes)};
  }

  Failure idle_timeout_failure() const {
    return {FailureKind::timeout, fmt::format("{}:{} made no progress for {:g} s", upstream().host, upstream().port,
                                              std::chrono::duration<double>(idle_timeout).count())};
  }

  Failure fail(Failure reason) {
    connection->close();
    failure = reason;
    return reason;
  }
};

}  // namespace turnout::upstream
