#pragma once
// Socket I/O finished in the calling handler when it can finish at once (issue 16). An Asio
// operation that completes at once (a write the socket takes whole, a Beast read whose
// message is already in the buffer) still queues its completion handler, and Boost 1.81's
// scheduler, finding its reactor task at the head of the queue with handlers behind it,
// runs a non-blocking `epoll_wait` before it reaches them: a syscall and a trip through the
// queue per such operation, most of them finding nothing. These helpers do the part that
// needs no waiting here, and leave the async operation only for what must wait.
// `send_now` is for plain TCP only (a TLS stream's records need its own engine).
// BufferedOnly parses what a buffer already holds and so serves TLS as well: the buffer
// holds plaintext, and what the TLS engine still holds is left to the async read that
// follows would_block. Single-threaded, on the socket's executor.
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>

#include <cstddef>
#include <span>

namespace turnout {

// The most pieces one send_now gathers; pieces past it are not sent (the count returned
// says so). Callers static_assert that their gathers fit.
inline constexpr std::size_t kSendNowMaxPieces = 8;

// One sendmsg with MSG_DONTWAIT of as much of `buffers` as the socket takes now: the bytes
// sent (0 when it would block, which is no error). `error` is set when the connection
// failed (a reset, a broken pipe), as an async write would have reported it. MSG_NOSIGNAL:
// a peer that is gone raises no SIGPIPE.
std::size_t send_now(boost::asio::ip::tcp::socket& socket, std::span<const boost::asio::const_buffer> buffers,
                     boost::system::error_code& error);

// A synchronous read stream with nothing to read: Beast's synchronous http::read and
// read_header over it parse what a buffer already holds and stop with
// `asio::error::would_block` where they would have to wait for the socket. The parser and
// the buffer are then as an async read would continue from.
struct BufferedOnly {
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers&, boost::system::error_code& error) {
    error = boost::asio::error::would_block;
    return 0;
  }
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers&) {
    throw boost::system::system_error(boost::asio::error::would_block);
  }
};

// Whether a buffered parse left the rest to the socket (then read on asynchronously).
inline bool needs_socket(const boost::system::error_code& error) { return error == boost::asio::error::would_block; }

}  // namespace turnout
