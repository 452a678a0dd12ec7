// HttpServer (listener/http_server.hpp) where a response or a request does not fit the
// fast path: a response the socket cannot take at once (the inline send writes part of it,
// the async write the rest), one the socket has no room for at all, requests pipelined
// into one read (the second parsed from the buffer the first left), and a client that goes
// away mid-response. Every client read has a deadline, so a response that never comes
// fails the test instead of hanging it.
#include "listener/http_server.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using turnout::listener::HttpRequest;
using turnout::listener::HttpResponse;

// Far more than a loopback socket's send and receive buffers hold together.
constexpr std::size_t kLargeBody = 16u << 20;

std::string large_body() {
  std::string body(kLargeBody, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  return body;
}

// Writes 'f's to a socket until its buffers hold no more: the bytes written.
std::size_t fill(int fd) {
  const std::string chunk(64 * 1024, 'f');
  std::size_t total = 0;
  for (;;) {
    const ssize_t sent = ::send(fd, chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return total;
    total += static_cast<std::size_t>(sent);
  }
}

class HttpServerTest : public ::testing::Test {
 protected:
  HttpServerTest()
      : server_(turnout::listener::HttpServerOptions{.host = "127.0.0.1", .port = 0},
                [this](HttpRequest& request, turnout::listener::Connection& connection)
                    -> asio::awaitable<std::optional<HttpResponse>> {
                  const std::string target(request.target());
                  if (target == "/gate") {
                    // Holds the server's only thread while the test fills other sockets.
                    gate_entered_.set_value();
                    gate_released_.get_future().wait();
                  }
                  {
                    const std::lock_guard lock(log_mutex_);
                    log_.push_back(target);
                  }
                  HttpResponse response(http::status::ok, request.version());
                  response.set("X-Target", target);
                  if (target == "/fill") {
                    response.body() = "filled:" + std::to_string(fill(connection.stream.socket().native_handle()));
                  } else {
                    response.body() = target == "/large" ? large_body() : "echo:" + request.body();
                  }
                  co_return response;
                },
                rejections()) {
    std::uint16_t port = 0;
    const auto error = server_.listen(port);
    EXPECT_FALSE(error) << *error;
    endpoint_ = tcp::endpoint(asio::ip::make_address("127.0.0.1"), port);
    runner_ = std::thread([this] { server_.run(); });
  }

  ~HttpServerTest() override {
    try {
      gate_released_.set_value();  // a test that failed while /gate held the server
    } catch (const std::future_error&) {
    }
    server_.stop(std::chrono::milliseconds(0));
    runner_.join();
  }

  static turnout::listener::RejectionResponses rejections() {
    auto answer = [](unsigned version, http::status status) {
      HttpResponse response(status, version);
      response.body() = "refused";
      return response;
    };
    return {[answer](unsigned v, std::uint64_t) { return answer(v, http::status::payload_too_large); },
            [answer](unsigned v, const std::string&) { return answer(v, http::status::bad_request); },
            [answer](unsigned v, const std::string&) { return answer(v, http::status::not_implemented); }};
  }

  tcp::socket connect() {
    tcp::socket socket(client_io_);
    socket.connect(endpoint_);
    return socket;
  }

  // Runs one client operation, failing after kClientTimeout rather than hanging until
  // ctest's timeout when a response (or its rest) never comes.
  template <class Start>
  boost::system::error_code within_timeout(tcp::socket& socket, Start start) {
    std::optional<boost::system::error_code> result;
    start([&](boost::system::error_code ec, std::size_t) { result = ec; });
    client_io_.restart();
    client_io_.run_for(kClientTimeout);
    if (result) return *result;
    socket.cancel();
    client_io_.restart();
    client_io_.run();
    return asio::error::timed_out;
  }

  template <class Message>
  boost::system::error_code read(tcp::socket& socket, beast::flat_buffer& buffer, Message& message) {
    return within_timeout(socket, [&](auto handler) { http::async_read(socket, buffer, message, handler); });
  }

  std::vector<std::string> log() {
    const std::lock_guard lock(log_mutex_);
    return log_;
  }

  static constexpr std::chrono::seconds kClientTimeout{60};
  asio::io_context client_io_;
  std::promise<void> gate_entered_;
  std::promise<void> gate_released_;
  std::mutex log_mutex_;
  std::vector<std::string> log_;  // the targets, in the order the handler saw them
  turnout::listener::HttpServer server_;
  tcp::endpoint endpoint_;
  std::thread runner_;
};

// The server's first, inline send takes what the socket buffers hold (one non-blocking
// sendmsg cannot pass 16 MB through them); the rest must follow in order, once, and the
// connection must still carry a next request.
TEST_F(HttpServerTest, ResponseLargerThanTheSocketBuffersArrivesWhole) {
  tcp::socket socket = connect();
  const std::string request = "GET /large HTTP/1.1\r\nHost: x\r\n\r\n";
  asio::write(socket, asio::buffer(request));
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kLargeBody + 1);
  ASSERT_FALSE(read(socket, buffer, parser));
  EXPECT_EQ(parser.get().result_int(), 200);
  EXPECT_TRUE(parser.get().body() == large_body());

  const std::string next = "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nnext";
  asio::write(socket, asio::buffer(next));
  http::response<http::string_body> response;
  ASSERT_FALSE(read(socket, buffer, response));
  EXPECT_EQ(response.body(), "echo:next");
}

// Two requests in one write: the first read brings both, and the second is parsed from
// what the first left in the buffer, with nothing more arriving on the socket.
TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  tcp::socket socket = connect();
  const std::string requests =
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst"
      "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecond";
  asio::write(socket, asio::buffer(requests));
  beast::flat_buffer buffer;
  http::response<http::string_body> first;
  ASSERT_FALSE(read(socket, buffer, first));
  http::response<http::string_body> second;
  ASSERT_FALSE(read(socket, buffer, second));
  EXPECT_EQ(first.body(), "echo:first");
  EXPECT_EQ(second.body(), "echo:second");
}

// A response whose inline send finds the socket full (would_block: nothing sent, no error)
// goes out whole by the async write, after what the socket already held. The /fill handler
// fills the socket's buffers before it returns its response.
TEST_F(HttpServerTest, ResponseFindingTheSocketFullGoesOutWhole) {
  tcp::socket socket = connect();
  asio::write(socket, asio::buffer(std::string("GET /fill HTTP/1.1\r\nHost: x\r\n\r\n")));
  std::string data;
  const std::string status_line = "HTTP/1.1 200";
  std::size_t through_status = 0;
  ASSERT_FALSE(within_timeout(socket, [&](auto handler) {
    asio::async_read_until(socket, asio::dynamic_buffer(data), status_line,
                           [&, handler](boost::system::error_code ec, std::size_t n) mutable {
                             through_status = n;
                             handler(ec, n);
                           });
  }));
  const std::size_t filled = through_status - status_line.size();
  EXPECT_GT(filled, 0u);
  EXPECT_EQ(data.find_first_not_of('f'), filled);
  beast::flat_buffer buffer;
  const std::string_view rest = std::string_view(data).substr(filled);
  buffer.commit(asio::buffer_copy(buffer.prepare(rest.size()), asio::buffer(rest)));
  http::response<http::string_body> response;
  ASSERT_FALSE(read(socket, buffer, response));
  EXPECT_EQ(response.body(), "filled:" + std::to_string(filled));

  const std::string next = "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nnext";
  asio::write(socket, asio::buffer(next));
  http::response<http::string_body> after;
  ASSERT_FALSE(read(socket, buffer, after));
  EXPECT_EQ(after.body(), "echo:next");
}

// A client that pipelines many cheap requests into one write does not hold the worker
// until its batch is answered: the session, answering from its buffer without waiting,
// lets the worker run other connections every few responses. The server's one thread is
// held (the /gate handler) while the batch and another connection's request arrive, so
// both are waiting when it goes on: the batch's connection first.
TEST_F(HttpServerTest, PipelinedBatchLetsAnotherConnectionIn) {
  tcp::socket batch_socket = connect();
  tcp::socket other_socket = connect();
  tcp::socket gate_socket = connect();
  beast::flat_buffer batch_buffer;
  beast::flat_buffer other_buffer;
  beast::flat_buffer gate_buffer;
  // Each session is then running and waiting for its next request.
  for (auto [socket, buffer] : {std::pair{&batch_socket, &batch_buffer}, std::pair{&other_socket, &other_buffer}}) {
    asio::write(*socket, asio::buffer(std::string("GET /warm HTTP/1.1\r\nHost: x\r\n\r\n")));
    http::response<http::string_body> warm;
    ASSERT_FALSE(read(*socket, *buffer, warm));
  }
  asio::write(gate_socket, asio::buffer(std::string("GET /gate HTTP/1.1\r\nHost: x\r\n\r\n")));
  ASSERT_EQ(gate_entered_.get_future().wait_for(kClientTimeout), std::future_status::ready);
  // 200 requests of 28 bytes: the session's idle read takes 4 KB of them (146) at once.
  constexpr int kBatch = 200;
  std::string batch;
  for (int i = 0; i < kBatch; ++i) batch += "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  asio::write(batch_socket, asio::buffer(batch));
  asio::write(other_socket, asio::buffer(std::string("GET /b HTTP/1.1\r\nHost: x\r\n\r\n")));
  gate_released_.set_value();

  http::response<http::string_body> gate;
  ASSERT_FALSE(read(gate_socket, gate_buffer, gate));
  for (int i = 0; i < kBatch; ++i) {
    http::response<http::string_body> response;
    ASSERT_FALSE(read(batch_socket, batch_buffer, response)) << i;
    ASSERT_EQ(response.body(), "echo:") << i;
  }
  http::response<http::string_body> other;
  ASSERT_FALSE(read(other_socket, other_buffer, other));
  EXPECT_EQ(other["X-Target"], "/b");

  const auto seen = log();
  const auto first_a = std::find(seen.begin(), seen.end(), "/a");
  const auto b = std::find(seen.begin(), seen.end(), "/b");
  ASSERT_NE(b, seen.end());
  ASSERT_NE(first_a, seen.end());
  // With the yield every 16 responses, /b comes after 16 of them; without it, after all
  // 146 requests of the first read.
  EXPECT_LT(std::count(first_a, std::max(first_a, b), std::string("/a")), 64);
}

// A request split across writes: the buffered parse stops where the bytes do, and the
// socket read finishes it.
TEST_F(HttpServerTest, RequestSplitAcrossWritesIsReadWhole) {
  tcp::socket socket = connect();
  asio::write(socket, asio::buffer(std::string("POST /a HTTP/1.1\r\nHost: x\r\nContent-Le")));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // lets the server read the part
  asio::write(socket, asio::buffer(std::string("ngth: 6\r\n\r\nspl")));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  asio::write(socket, asio::buffer(std::string("its")));
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  ASSERT_FALSE(read(socket, buffer, response));
  EXPECT_EQ(response.body(), "echo:splits");
}

// A client that closes while the rest of a large response is waiting to go: the server
// drops that connection and goes on serving others.
TEST_F(HttpServerTest, ClientClosingMidResponseLeavesTheServerServing) {
  {
    tcp::socket socket = connect();
    asio::write(socket, asio::buffer(std::string("GET /large HTTP/1.1\r\nHost: x\r\n\r\n")));
    std::array<char, 4096> some{};
    ASSERT_FALSE(within_timeout(socket, [&](auto handler) { asio::async_read(socket, asio::buffer(some), handler); }));
    socket.set_option(asio::socket_base::linger(true, 0));  // a reset, not a clean close
  }
  tcp::socket socket = connect();
  asio::write(socket, asio::buffer(std::string("POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")));
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  ASSERT_FALSE(read(socket, buffer, response));
  EXPECT_EQ(response.body(), "echo:ok");
  for (int i = 0; i < 500 && server_.in_flight() != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(server_.in_flight(), 0u);
}

}  // namespace
