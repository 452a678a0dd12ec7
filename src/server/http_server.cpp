#include "server/http_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <thread>

namespace turnout::server {
namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Counts a request as in flight from its first header byte to its last response byte.
class InFlightGuard {
 public:
  explicit InFlightGuard(std::atomic<std::size_t>& n) : n_(n) { ++n_; }
  ~InFlightGuard() { --n_; }
  InFlightGuard(const InFlightGuard&) = delete;
  InFlightGuard& operator=(const InFlightGuard&) = delete;

 private:
  std::atomic<std::size_t>& n_;
};

}  // namespace

HttpServer::HttpServer(HttpServerOptions options, Handler handler, RejectionResponses rejections)
    : options_(std::move(options)), handler_(std::move(handler)), rejections_(std::move(rejections)) {
  const unsigned n = std::max(1u, options_.threads);
  for (unsigned i = 0; i < n; ++i) workers_.push_back(std::make_unique<asio::io_context>(1));
}

HttpServer::~HttpServer() = default;

std::optional<std::string> HttpServer::listen(std::uint16_t& bound_port) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(options_.host, ec);
  if (ec) return "invalid server.host '" + options_.host + "': " + ec.message();
  const tcp::endpoint endpoint(address, options_.port);
  acceptor_ = std::make_unique<tcp::acceptor>(*workers_[0]);
  if (acceptor_->open(endpoint.protocol(), ec); ec) return "cannot open socket: " + ec.message();
  acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (acceptor_->bind(endpoint, ec); ec)
    return "cannot listen on " + options_.host + ":" + std::to_string(options_.port) + ": " + ec.message();
  if (acceptor_->listen(asio::socket_base::max_listen_connections, ec); ec) return "listen failed: " + ec.message();
  bound_port = acceptor_->local_endpoint().port();
  return std::nullopt;
}

void HttpServer::run() {
  asio::co_spawn(*workers_[0], accept_loop(), asio::detached);
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
    boost::system::error_code ignored;
    if (acceptor_) acceptor_->close(ignored);
    // Poll until in-flight requests are done or the grace period ends, then stop every loop.
    auto deadline = std::chrono::steady_clock::now() + grace;
    auto timer = std::make_shared<asio::steady_timer>(*workers_[0]);
    auto check = std::make_shared<std::function<void()>>();
    *check = [this, deadline, timer, check] {
      if (in_flight_.load() == 0 || std::chrono::steady_clock::now() >= deadline) {
        for (auto& w : workers_) w->stop();
        *check = nullptr;  // break the self-reference
        return;
      }
      timer->expires_after(std::chrono::milliseconds(10));
      timer->async_wait([check](const boost::system::error_code&) {
        if (*check) (*check)();
      });
    };
    (*check)();
  });
}

asio::awaitable<void> HttpServer::accept_loop() {
  while (!draining_.load()) {
    const unsigned worker = next_worker_;
    next_worker_ = (next_worker_ + 1) % static_cast<unsigned>(workers_.size());
    auto [ec, socket] = co_await acceptor_->async_accept(*workers_[worker], use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_->is_open()) co_return;
      continue;  // e.g. EMFILE: keep serving the connections we have
    }
    asio::co_spawn(*workers_[worker], session(std::move(socket), worker), asio::detached);
  }
}

asio::awaitable<void> HttpServer::session(tcp::socket socket, unsigned worker) {
  beast::tcp_stream stream(std::move(socket));
  boost::system::error_code ignored;
  stream.socket().set_option(tcp::no_delay(true), ignored);
  beast::flat_buffer buffer;
  Connection connection{stream, worker};
  bool first_request = true;

  auto send = [&](HttpResponse res) -> asio::awaitable<bool> {
    res.prepare_payload();
    stream.expires_after(options_.read_timeout);
    auto [ec, n] = co_await http::async_write(stream, res, use_tuple);
    (void)n;
    co_return !ec && res.keep_alive();
  };

  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(options_.max_body_bytes);
    parser.header_limit(64 * 1024);
    // A keep-alive connection may sit idle longer than a request may take to arrive.
    stream.expires_after(first_request ? options_.read_timeout : options_.idle_timeout);
    auto [header_ec, header_bytes] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
    (void)header_bytes;
    if (header_ec == http::error::body_limit) {
      // A declared Content-Length over the limit: refused before any body is read.
      auto res = rejections_.body_too_large(11, options_.max_body_bytes);
      res.keep_alive(false);
      co_await send(std::move(res));
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
    InFlightGuard in_flight(in_flight_);
    const auto& head = parser.get();
    const unsigned version = head.version();
    if (parser.content_length() && *parser.content_length() > options_.max_body_bytes) {
      auto res = rejections_.body_too_large(version, options_.max_body_bytes);
      res.keep_alive(false);  // the unread body makes the connection unusable
      co_await send(std::move(res));
      break;
    }
    if (beast::iequals(head[http::field::expect], "100-continue")) {
      static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
      auto [ec, n] = co_await asio::async_write(stream, asio::buffer(continue_line), use_tuple);
      (void)n;
      if (ec) break;
    }
    stream.expires_after(options_.read_timeout);
    auto [body_ec, body_bytes] = co_await http::async_read(stream, buffer, parser, use_tuple);
    (void)body_bytes;
    if (body_ec) {
      if (body_ec == http::error::body_limit) {
        auto res = rejections_.body_too_large(version, options_.max_body_bytes);
        res.keep_alive(false);
        co_await send(std::move(res));
      } else if (body_ec != http::error::end_of_stream && body_ec != beast::error::timeout &&
                 body_ec != asio::error::connection_reset && body_ec != http::error::partial_message) {
        auto res = rejections_.bad_request(version, "Malformed HTTP request body: " + body_ec.message());
        res.keep_alive(false);
        co_await send(std::move(res));
      }
      break;
    }
    HttpRequest request = parser.release();
    stream.expires_never();  // the handler bounds its own upstream time
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
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.close();
}

}  // namespace turnout::server
