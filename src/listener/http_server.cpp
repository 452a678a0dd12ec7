#include "listener/http_server.hpp"

#include "common/inline_io.hpp"
#include "common/io_deadline.hpp"
#include "listener/request_framing.hpp"
#include "listener/response_head.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <array>
#include <thread>

namespace turnout::listener {
namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// The first read on a kept-alive connection: a request head usually fits.
constexpr std::size_t kFirstReadBytes = 4096;
// Responses a session sends in a row without waiting on its socket before it lets the rest
// of the worker run once: requests pipelined into one read are parsed from the buffer and
// answered inline (common/inline_io.hpp), and nothing else on the worker (other
// connections, timers, the acceptor) runs until the session next waits.
constexpr int kInlineResponsesBeforeYield = 16;

}  // namespace

HttpServer::HttpServer(HttpServerOptions options, Handler handler, RejectionResponses rejections)
    : options_(std::move(options)), handler_(std::move(handler)), rejections_(std::move(rejections)) {
  const unsigned n = std::max(1u, options_.threads);
  for (unsigned i = 0; i < n; ++i) workers_.push_back(std::make_unique<asio::io_context>(1));
  connections_.resize(n);
}

HttpServer::~HttpServer() {
  // Destroying an io_context destroys the session coroutines still suspended in it, and a
  // session unregisters itself from connections_ and the counters as it goes: so the loops
  // go first, while those members are alive (members die in reverse order of declaration,
  // which would free connections_ before the loops). The acceptor and the drain timer use
  // worker 0's loop, so they go before it.
  acceptor_.reset();
  drain_deadline_.reset();
  workers_.clear();
}

class HttpServer::InFlight {
 public:
  explicit InFlight(HttpServer& server) : server_(server) { ++server_.in_flight_; }
  ~InFlight() {
    if (--server_.in_flight_ == 0 && server_.draining_.load())
      asio::post(*server_.workers_[0], [&server = server_] {
        if (server.in_flight_.load() == 0) server.stop_loops();
      });
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  HttpServer& server_;
};

class HttpServer::Registration {
 public:
  Registration(HttpServer& server, unsigned worker, Connection& connection)
      : set_(server.connections_[worker]), connection_(connection) {
    set_.insert(&connection_);
  }
  ~Registration() { set_.erase(&connection_); }
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;

 private:
  std::unordered_set<Connection*>& set_;
  Connection& connection_;
};

std::optional<std::string> HttpServer::listen(std::uint16_t& bound_port) {
  acceptor_ = std::make_unique<Acceptor>(workers_[0]->get_executor());
  auto port = acceptor_->listen(options_.host, options_.port);
  if (!port) return port.error().message;
  bound_port = *port;
  return std::nullopt;
}

void HttpServer::run() {
  // One accept is outstanding at a time, so the worker chosen for the next socket is the
  // one its on_accept call serves.
  auto accepting_worker = std::make_shared<unsigned>(0);
  auto next_worker = [this, accepting_worker] {
    *accepting_worker = next_worker_;
    next_worker_ = (next_worker_ + 1) % static_cast<unsigned>(workers_.size());
    return workers_[*accepting_worker]->get_executor();
  };
  auto on_accept = [this, accepting_worker](tcp::socket socket) {
    const unsigned worker = *accepting_worker;
    ++open_connections_;  // here, not in the session, so the next at_capacity check sees it
    asio::co_spawn(*workers_[worker], session(std::move(socket), worker), asio::detached);
  };
  auto at_capacity = [this] { return open_connections_.load() >= options_.max_connections; };
  asio::co_spawn(*workers_[0], acceptor_->run(next_worker, on_accept, at_capacity), asio::detached);
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto& w : workers_) guards.push_back(asio::make_work_guard(*w));
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < workers_.size(); ++i) threads.emplace_back([this, i] { workers_[i]->run(); });
  workers_[0]->run();
  for (auto& t : threads) t.join();
}

void HttpServer::stop(std::chrono::milliseconds grace) {
  asio::post(*workers_[0], [this, grace] {
    if (draining_.exchange(true)) return;
    if (acceptor_) acceptor_->close();
    if (in_flight_.load() == 0) {
      stop_loops();
      return;
    }
    drain_deadline_ = std::make_unique<asio::steady_timer>(*workers_[0], grace);
    drain_deadline_->async_wait([this](const boost::system::error_code& ec) {
      if (!ec) cancel_in_flight();
    });
  });
}

void HttpServer::cancel_in_flight() {
  // Each connection is cancelled on its own thread: signals and handlers are not thread-safe.
  for (unsigned i = 0; i < workers_.size(); ++i) {
    asio::post(*workers_[i], [this, i] {
      // A handler may end its session while reacting; take the set as it is now.
      const std::vector<Connection*> connections(connections_[i].begin(), connections_[i].end());
      for (Connection* connection : connections) {
        if (!connections_[i].contains(connection)) continue;
        connection->shutdown.requested = true;
        connection->shutdown.signal.emit(asio::cancellation_type::terminal);
      }
    });
  }
  // The last handler to finish ends the loops (InFlight); this bounds the wait for them.
  drain_deadline_->expires_after(options_.cancel_wait);
  drain_deadline_->async_wait([this](const boost::system::error_code& ec) {
    if (!ec) stop_loops();
  });
}

void HttpServer::stop_loops() {
  if (drain_deadline_) drain_deadline_->cancel();
  for (auto& w : workers_) w->stop();
}

asio::awaitable<void> HttpServer::linger_close(beast::tcp_stream& stream) {
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.expires_after(options_.linger_time);
  std::array<char, 16384> discard;
  std::uint64_t dropped = 0;
  while (dropped < options_.linger_bytes) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(discard), use_tuple);
    if (ec) break;  // the client's FIN, a reset, or linger_time over
    dropped += n;
  }
  stream.close();
}

asio::awaitable<void> HttpServer::session(tcp::socket socket, unsigned worker) {
  struct ConnectionSlot {  // released however the session ends
    std::atomic<std::size_t>& open;
    ~ConnectionSlot() { --open; }
  } slot{open_connections_};
  beast::tcp_stream stream(std::move(socket));
  boost::system::error_code ignored;
  stream.socket().set_option(tcp::no_delay(true), ignored);
  beast::flat_buffer buffer;
  BufferedOnly buffered_only;
  // The idle, read and write timeouts: one lazily re-armed timer for the connection rather
  // than Beast's, armed and cancelled around every read and write (issue 16). An operation
  // it cuts ends with an error like any lost connection; `timed_out` says which it was.
  IoDeadline deadline(stream);
  auto timed_out = [&](const boost::system::error_code& error) {
    deadline.end();
    return error && deadline.expired();
  };
  Connection connection{stream, worker};
  connection.pending_input = &buffer;
  const Registration registration(*this, worker, connection);
  bool first_request = true;
  bool refused_body = false;  // a 413 was sent while the client may still be writing

  std::string head_text;  // reused: a kept-alive connection's heads need no new allocation
  // Responses sent since the session last waited (on its socket or a yield).
  int inline_responses = 0;
  // True when the response went out.
  auto write_response = [&](HttpResponse& res) -> asio::awaitable<bool> {
    // A string body's size is known, so this sets Content-Length and clears any chunked
    // coding a handler set: the one gather write below is the only way a response goes out.
    res.prepare_payload();
    // Head and body in one gather write, the head as Beast would have written it.
    head_text.clear();
    append_response_head(head_text, res.base(), res.raw_fields);
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_text), asio::buffer(res.body())};
    static_assert(std::tuple_size_v<decltype(buffers)> <= kSendNowMaxPieces);
    // What the socket takes now goes out here (common/inline_io.hpp); an async write, under
    // the write deadline, only for a rest the socket's buffer had no room for.
    boost::system::error_code ec;
    const std::size_t sent = send_now(stream.socket(), buffers, ec);
    if (ec) co_return false;
    if (sent == head_text.size() + res.body().size()) co_return true;
    beast::buffers_suffix<std::array<asio::const_buffer, 2>> rest(buffers);
    rest.consume(sent);
    deadline.begin(asio::steady_timer::clock_type::now() + options_.read_timeout);
    inline_responses = 0;
    auto [write_ec, n] = co_await asio::async_write(stream, rest, use_tuple);
    (void)n;
    deadline.end();
    co_return !write_ec;
  };
  // True when the connection may carry another request.
  auto send = [&](HttpResponse res) -> asio::awaitable<bool> {
    co_return co_await write_response(res) && res.keep_alive();
  };
  // A refusal sent before the body was read: true when it went out (then linger).
  auto send_refusal = [&](HttpResponse res) -> asio::awaitable<bool> { co_return co_await write_response(res); };

  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(options_.max_body_bytes);
    parser.header_limit(64 * 1024);
    if (!first_request && buffer.size() == 0) {
      // A kept-alive connection may wait idle_timeout for the next request's first byte;
      // the request itself then gets read_timeout, as on a new connection.
      deadline.begin(asio::steady_timer::clock_type::now() + options_.idle_timeout);
      inline_responses = 0;
      auto [first_ec, first_bytes] = co_await stream.async_read_some(buffer.prepare(kFirstReadBytes), use_tuple);
      deadline.end();
      if (first_ec) break;
      buffer.commit(first_bytes);
    }
    // One deadline for the whole request: head and body together within read_timeout.
    const auto request_deadline = asio::steady_timer::clock_type::now() + options_.read_timeout;
    deadline.begin(request_deadline);
    // A head already in the buffer (a kept-alive connection's first read usually brings the
    // whole request) is parsed here; the socket is read only for what is missing.
    boost::system::error_code header_ec;
    http::read_header(buffered_only, buffer, parser, header_ec);
    if (needs_socket(header_ec)) {
      inline_responses = 0;
      auto [read_ec, header_bytes] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
      (void)header_bytes;
      header_ec = read_ec;
    }
    if (timed_out(header_ec)) break;  // no answer to a request that did not arrive in time
    if (header_ec == http::error::body_limit) {
      // A declared Content-Length over the limit: refused before any body is read.
      auto res = rejections_.body_too_large(11, options_.max_body_bytes);
      res.keep_alive(false);
      refused_body = co_await send_refusal(std::move(res));
      break;
    }
    if (header_ec) {
      // Timeouts, EOF and resets get no answer; a malformed request gets a 400 and a close.
      const bool malformed = header_ec.category() == http::make_error_code(http::error::bad_target).category() &&
                             header_ec != http::error::end_of_stream && header_ec != http::error::partial_message;
      if (malformed) {
        auto res = rejections_.bad_request(11, "Malformed HTTP request: " + header_ec.message());
        res.keep_alive(false);
        co_await send(std::move(res));
      }
      break;
    }
    InFlight in_flight(*this);
    const auto& head = parser.get();
    const unsigned version = head.version();
    if (auto coding = unsupported_transfer_coding(head)) {
      // beast would read a gzip-then-chunked body as if it were plain: refuse it.
      auto res = rejections_.unsupported_transfer_coding(version, *coding);
      res.keep_alive(false);
      refused_body = co_await send_refusal(std::move(res));
      break;
    }
    if (parser.content_length() && *parser.content_length() > options_.max_body_bytes) {
      auto res = rejections_.body_too_large(version, options_.max_body_bytes);
      res.keep_alive(false);  // the unread body makes the connection unusable
      refused_body = co_await send_refusal(std::move(res));
      break;
    }
    deadline.begin(request_deadline);  // the head's: head and body together
    if (beast::iequals(head[http::field::expect], "100-continue")) {
      static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
      inline_responses = 0;
      auto [ec, n] = co_await asio::async_write(stream, asio::buffer(continue_line), use_tuple);
      (void)n;
      if (ec) break;
    }
    boost::system::error_code body_ec;
    http::read(buffered_only, buffer, parser, body_ec);
    if (needs_socket(body_ec)) {
      inline_responses = 0;
      auto [read_ec, body_bytes] = co_await http::async_read(stream, buffer, parser, use_tuple);
      (void)body_bytes;
      body_ec = read_ec;
    }
    if (timed_out(body_ec)) break;
    if (body_ec) {
      if (body_ec == http::error::body_limit) {
        auto res = rejections_.body_too_large(version, options_.max_body_bytes);
        res.keep_alive(false);
        refused_body = co_await send_refusal(std::move(res));
      } else if (body_ec != http::error::end_of_stream && body_ec != beast::error::timeout &&
                 body_ec != asio::error::connection_reset && body_ec != http::error::partial_message) {
        auto res = rejections_.bad_request(version, "Malformed HTTP request body: " + body_ec.message());
        res.keep_alive(false);
        co_await send(std::move(res));
      }
      break;
    }
    HttpRequest request = parser.release();  // the handler bounds its own upstream time
    std::optional<HttpResponse> response;
    connection.keep_alive = request.keep_alive() && !draining_.load();
    try {
      response = co_await handler_(request, connection);
    } catch (const std::exception& e) {
      response = rejections_.bad_request(version, std::string("internal error: ") + e.what());
      response->result(http::status::internal_server_error);
    }
    const bool keep_alive = request.keep_alive() && !draining_.load();
    if (response) {
      response->keep_alive(keep_alive);
      if (!co_await send(std::move(*response))) break;
    } else if (!keep_alive || connection.close_after || !stream.socket().is_open()) {
      break;
    }
    first_request = false;
    if (++inline_responses == kInlineResponsesBeforeYield) {
      inline_responses = 0;
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    }
  }
  if (refused_body) {
    co_await linger_close(stream);
    co_return;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.close();
}

}  // namespace turnout::listener
