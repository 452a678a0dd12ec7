// Inline socket I/O (common/inline_io.hpp) on a connected loopback pair. send_now: a
// gather the socket has room for goes out whole; one larger than the room goes out in part
// and says how much; a full socket is 0 bytes and no error; a peer that is gone is an error
// and raises no SIGPIPE. BufferedOnly: a message wholly in the buffer parses without a
// socket read; a partial one stops with would_block, and a socket read finishes it.
#include "common/inline_io.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <array>
#include <chrono>
#include <optional>
#include <string>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using turnout::BufferedOnly;
using turnout::needs_socket;
using turnout::send_now;

class InlineIoTest : public ::testing::Test {
 protected:
  InlineIoTest() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), sender_(io_) {}

  // Connects sender_ to receiver_; a socket buffer size > 0 fixes both ends' (no autotuning).
  void connect(int buffer_bytes = 0) {
    if (buffer_bytes > 0) {
      acceptor_.set_option(asio::socket_base::receive_buffer_size(buffer_bytes));
      sender_.open(tcp::v4());
      sender_.set_option(asio::socket_base::send_buffer_size(buffer_bytes));
    }
    sender_.connect(acceptor_.local_endpoint());
    receiver_ = acceptor_.accept();
  }

  // Reads exactly `n` bytes from the receiver, or fails after 20 s instead of hanging.
  std::string receive(std::size_t n) {
    std::string data(n, '\0');
    std::optional<boost::system::error_code> result;
    asio::async_read(receiver_, asio::buffer(data), [&](boost::system::error_code ec, std::size_t) { result = ec; });
    io_.restart();
    io_.run_for(std::chrono::seconds(20));
    if (!result) {
      receiver_.cancel();
      io_.restart();
      io_.run();
      ADD_FAILURE() << "timed out reading " << n << " bytes";
      return {};
    }
    EXPECT_FALSE(*result) << result->message();
    return data;
  }

  // Whether the receiver has nothing more to read now.
  bool receiver_drained() {
    receiver_.non_blocking(true);
    std::array<char, 1> byte{};
    boost::system::error_code ec;
    receiver_.read_some(asio::buffer(byte), ec);
    receiver_.non_blocking(false);
    return ec == asio::error::would_block;
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  tcp::socket sender_;
  tcp::socket receiver_{io_};
};

TEST_F(InlineIoTest, GatherWithRoomGoesOutWhole) {
  connect();
  const std::string head = "head:";
  const std::string body = "the body";
  // An empty piece between them is skipped, as a response without a body has one.
  const std::array<asio::const_buffer, 3> pieces{asio::buffer(head), asio::const_buffer(), asio::buffer(body)};
  boost::system::error_code ec;
  EXPECT_EQ(send_now(sender_, pieces, ec), head.size() + body.size());
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(receive(head.size() + body.size()), head + body);
  EXPECT_TRUE(receiver_drained());
}

// More than the socket buffers hold: the count is what went out, the bytes are that prefix
// of the gather (across the head/body boundary), and nothing past it was sent.
TEST_F(InlineIoTest, GatherLargerThanTheRoomGoesOutInPartAndSaysHowMuch) {
  connect(64 * 1024);
  const std::string head(1000, 'h');
  std::string body(4u << 20, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 23);
  const std::array<asio::const_buffer, 2> pieces{asio::buffer(head), asio::buffer(body)};
  boost::system::error_code ec;
  const std::size_t sent = send_now(sender_, pieces, ec);
  EXPECT_FALSE(ec) << ec.message();
  ASSERT_GT(sent, head.size());
  ASSERT_LT(sent, head.size() + body.size());
  EXPECT_TRUE(receive(sent) == (head + body).substr(0, sent));
  EXPECT_TRUE(receiver_drained());
}

// A socket whose buffers are full: nothing sent and no error (the caller's async write
// then waits for room), however often it is asked.
TEST_F(InlineIoTest, FullSocketIsZeroBytesAndNoError) {
  connect(64 * 1024);
  const std::string chunk(64 * 1024, 'x');
  const std::array<asio::const_buffer, 1> pieces{asio::buffer(chunk)};
  boost::system::error_code ec;
  std::size_t total = 0;
  for (int i = 0; i < 10000; ++i) {
    const std::size_t sent = send_now(sender_, pieces, ec);
    ASSERT_FALSE(ec) << ec.message();
    if (sent == 0) break;
    total += sent;
  }
  ASSERT_GT(total, 0u);
  EXPECT_EQ(send_now(sender_, pieces, ec), 0u);
  EXPECT_FALSE(ec) << ec.message();
  // The socket is as it was: what the receiver reads is what was counted.
  EXPECT_EQ(receive(total), std::string(total, 'x'));
}

// A peer that reset the connection: an error (as an async write reports it), and no
// SIGPIPE. `serve` ignores SIGPIPE process-wide; this test does not, and blocks it in this
// thread only, so a SIGPIPE the send raised stays pending where the test can see it.
TEST_F(InlineIoTest, PeerGoneIsAnErrorAndNoSigpipe) {
  connect();
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  sigset_t previous;
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &pipe_only, &previous), 0);

  receiver_.set_option(asio::socket_base::linger(true, 0));  // close with a reset
  receiver_.close();
  const std::string data = "after the peer left";
  const std::array<asio::const_buffer, 1> pieces{asio::buffer(data)};
  // The first send may find the reset already there or draw it; within two the socket
  // reports the connection gone (ECONNRESET, then EPIPE, which raises SIGPIPE without
  // MSG_NOSIGNAL).
  boost::system::error_code first;
  boost::system::error_code second;
  send_now(sender_, pieces, first);
  EXPECT_EQ(send_now(sender_, pieces, second), 0u);
  EXPECT_TRUE(second) << "no error from a send to a reset connection";
  EXPECT_TRUE(second == asio::error::broken_pipe || second == asio::error::connection_reset) << second.message();

  sigset_t pending;
  sigemptyset(&pending);
  ASSERT_EQ(sigpending(&pending), 0);
  const bool raised = sigismember(&pending, SIGPIPE) == 1;
  if (raised) {
    const timespec now{};
    sigtimedwait(&pipe_only, nullptr, &now);  // consumed, so unblocking does not kill the run
  }
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, &previous, nullptr), 0);
  EXPECT_FALSE(raised) << "send_now raised SIGPIPE";
}

// A stream that counts Beast's socket reads and has nothing to read, as BufferedOnly.
struct CountingBufferedOnly {
  BufferedOnly inner;
  int reads = 0;
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers, boost::system::error_code& error) {
    ++reads;
    return inner.read_some(buffers, error);
  }
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers) {
    ++reads;
    return inner.read_some(buffers);
  }
};

void fill(beast::flat_buffer& buffer, std::string_view text) {
  buffer.commit(asio::buffer_copy(buffer.prepare(text.size()), asio::buffer(text)));
}

// A whole request in the buffer (with the start of a pipelined one behind it): parsed
// without a socket read, and the next request's bytes stay in the buffer.
TEST(BufferedOnlyTest, MessageWhollyInTheBufferParsesWithoutASocketRead) {
  beast::flat_buffer buffer;
  fill(buffer, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\n");
  CountingBufferedOnly stream;
  http::request_parser<http::string_body> parser;
  boost::system::error_code ec;
  http::read(stream, buffer, parser, ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(parser.is_done());
  EXPECT_EQ(parser.get().body(), "hello");
  EXPECT_EQ(stream.reads, 0);
  EXPECT_EQ(beast::buffers_to_string(buffer.data()), "GET /next HTTP/1.1\r\n");
}

// A head cut short, then a body cut short: each buffered parse stops with would_block
// (not an error the session would answer), and a socket read on the same parser and
// buffer finishes the message.
TEST_F(InlineIoTest, PartialMessageStopsWithWouldBlockAndTheSocketReadFinishesIt) {
  connect();
  BufferedOnly buffered_only;
  beast::flat_buffer buffer;
  http::request_parser<http::string_body> parser;
  boost::system::error_code ec;

  fill(buffer, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Le");
  http::read_header(buffered_only, buffer, parser, ec);
  EXPECT_TRUE(needs_socket(ec)) << ec.message();
  EXPECT_FALSE(parser.is_header_done());

  fill(buffer, "ngth: 11\r\n\r\nhello");
  http::read_header(buffered_only, buffer, parser, ec);
  EXPECT_FALSE(ec) << ec.message();
  ASSERT_TRUE(parser.is_header_done());
  http::read(buffered_only, buffer, parser, ec);
  EXPECT_TRUE(needs_socket(ec)) << ec.message();
  EXPECT_FALSE(parser.is_done());

  asio::write(sender_, asio::buffer(std::string(" world")));
  std::optional<boost::system::error_code> result;
  http::async_read(receiver_, buffer, parser, [&](boost::system::error_code read_ec, std::size_t) { result = read_ec; });
  io_.run_for(std::chrono::seconds(20));
  ASSERT_TRUE(result) << "the socket read did not finish";
  EXPECT_FALSE(*result) << result->message();
  EXPECT_TRUE(parser.is_done());
  EXPECT_EQ(parser.get().body(), "hello world");
}

}  // namespace
