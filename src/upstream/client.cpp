// The upstream client: one HTTP/1.1 exchange per attempt over a pooled keep-alive
// connection, with deadlines carried by beast::tcp_stream (it closes the socket when one
// passes, which is also how a timed-out connection is guaranteed never to be reused).
#include "upstream/client.hpp"

#include "common/inline_io.hpp"
#include "upstream/connection.hpp"
#include "upstream/exchange.hpp"
#include "upstream/failure.hpp"
#include "upstream/proxy.hpp"
#include "upstream/request_head.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/throw_exception.hpp>
#include <fmt/format.h>

#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <stdexcept>

namespace turnout::upstream {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using boost::system::error_code;
using detail::Clock;
using detail::Connection;
using detail::ConnectionPool;
using detail::Phase;
using detail::can_reuse;
using detail::deadline_after;
using detail::expire_at;
using detail::kNever;
using detail::nothrow_awaitable;

namespace {

// Providers add many headers (rate-limit state, tracing); beast's default is 8 KiB.
constexpr std::uint32_t kMaxResponseHeaderBytes = 64u << 10;
using HeadParser = http::response_parser<http::empty_body>;

// The moments at which each phase of one attempt must be over.
struct AttemptDeadlines {
  explicit AttemptDeadlines(const Request& request, Clock::time_point start = Clock::now())
      : total(deadline_after(start, request.timeout)),
        connect(std::min(total, deadline_after(start, request.connect_timeout))),
        total_limit(request.timeout),
        connect_limit(connect == total ? request.timeout : request.connect_timeout),
        first_byte_limit(request.first_byte_timeout) {}

  // Counted from when the request has been written.
  Clock::time_point first_byte(Clock::time_point written) const {
    return std::min(total, deadline_after(written, first_byte_limit));
  }
  Clock::duration first_byte_limit_for(Clock::time_point written) const {
    return first_byte(written) == total ? total_limit : first_byte_limit;
  }

  Clock::time_point total;
  Clock::time_point connect;
  Clock::duration total_limit;
  Clock::duration connect_limit;
  Clock::duration first_byte_limit;
};

bool is_ip_literal(const std::string& host) {
  error_code error;
  asio::ip::make_address(host, error);
  return !error;
}

template <class Parser>
std::optional<std::string> header_value(const Parser& parser, http::field field) {
  const auto found = parser.get().find(field);
  if (found == parser.get().end()) return std::nullopt;
  return std::string(found->value());
}

Failure missing_endpoint() { return {FailureKind::connect, "the request names no upstream endpoint"}; }

}  // namespace

void throw_exception_from_error(const Failure& failure, const boost::source_location& loc) {
  boost::throw_exception(std::runtime_error(failure.message), loc);
}

std::shared_ptr<asio::ssl::context> make_client_tls_context() {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
  // Idle pooled connections and open streams hold TLS buffers; release them when empty.
  SSL_CTX_set_mode(context->native_handle(), SSL_MODE_RELEASE_BUFFERS);
  context->set_default_verify_paths();
  context->set_verify_mode(asio::ssl::verify_peer);
  return context;
}

// ---------------------------------------------------------------------------------------
// Client

struct Client::Impl {
  asio::any_io_executor executor;
  std::shared_ptr<asio::ssl::context> tls;
  // Shared so that a ResponseStream outliving the Client can tell the pool is gone.
  std::shared_ptr<ConnectionPool> pool = std::make_shared<ConnectionPool>();
  std::shared_ptr<const ProxyConfig> proxy;  // may be null

  asio::awaitable<Result<asio::ip::tcp::resolver::results_type, Failure>> resolve(
      const Endpoint& endpoint, const AttemptDeadlines& deadlines);
  asio::awaitable<Result<std::unique_ptr<Connection>, Failure>> connect(const Endpoint& endpoint,
                                                                       const AttemptDeadlines& deadlines);
  // Asks the proxy, over the connected `tcp`, for a tunnel to `target`; nullopt once open.
  asio::awaitable<std::optional<Failure>> open_tunnel(boost::beast::tcp_stream& tcp, const Endpoint& target,
                                                     const AttemptDeadlines& deadlines);
  asio::awaitable<Result<std::unique_ptr<Connection>, Failure>> exchange_head(
      const Request& request, const AttemptDeadlines& deadlines, std::optional<HeadParser>& head);
};

asio::awaitable<Result<asio::ip::tcp::resolver::results_type, Failure>> Client::Impl::resolve(
    const Endpoint& endpoint, const AttemptDeadlines& deadlines) {
  // The resolver has no per-operation deadline: a timer cancels it. The timer's handler
  // may run after this coroutine is gone, hence the weak reference.
  auto resolver = std::make_shared<asio::ip::tcp::resolver>(executor);
  asio::steady_timer timer(executor);
  if (deadlines.connect != kNever) {
    timer.expires_at(deadlines.connect);
    timer.async_wait([weak_resolver = std::weak_ptr(resolver)](const error_code& error) {
      if (error) return;
      if (auto live_resolver = weak_resolver.lock()) live_resolver->cancel();
    });
  }
  auto [error, results] = co_await resolver->async_resolve(endpoint.host, endpoint.port, nothrow_awaitable);
  if (error == asio::error::operation_aborted) error = boost::beast::error::timeout;
  if (error) co_return detail::classify_error(error, Phase::resolve, endpoint, deadlines.connect_limit);
  co_return std::move(results);
}

asio::awaitable<Result<std::unique_ptr<Connection>, Failure>> Client::Impl::connect(
    const Endpoint& endpoint, const AttemptDeadlines& deadlines) {
  const bool tunnel = proxy && proxy->applies_to(endpoint);
  const Endpoint& first_hop = tunnel ? proxy->proxy : endpoint;
  auto resolved = co_await resolve(first_hop, deadlines);
  if (!resolved) co_return resolved.error();

  if (endpoint.tls && !tls)
    co_return Failure{FailureKind::connect, fmt::format("no TLS context to connect to {}", endpoint.host)};
  auto connection = std::make_unique<Connection>(executor, endpoint, endpoint.tls ? tls.get() : nullptr);
  auto& tcp = connection->tcp();
  expire_at(tcp, deadlines.connect);
  auto [connect_error, connected_to] = co_await tcp.async_connect(*resolved, nothrow_awaitable);
  if (connect_error)
    co_return detail::classify_error(connect_error, Phase::connect, first_hop, deadlines.connect_limit);
  error_code ignored;
  tcp.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
  if (tunnel) {
    if (auto refused = co_await open_tunnel(tcp, endpoint, deadlines)) co_return std::move(*refused);
  }

  if (auto* tls_stream = connection->tls_stream()) {
    // SNI must carry a DNS name, never an address literal (RFC 6066 section 3).
    if (!is_ip_literal(endpoint.host) && !SSL_set_tlsext_host_name(tls_stream->native_handle(), endpoint.host.c_str()))
      co_return Failure{FailureKind::connect, fmt::format("cannot set TLS server name for {}", endpoint.host)};
    tls_stream->set_verify_callback(asio::ssl::host_name_verification(endpoint.host));
    auto [handshake_error] = co_await tls_stream->async_handshake(asio::ssl::stream_base::client, nothrow_awaitable);
    if (handshake_error)
      co_return detail::classify_error(handshake_error, Phase::handshake, endpoint, deadlines.connect_limit);
  }
  tcp.expires_never();  // from here the connection's IoDeadline bounds its reads and writes
  co_return connection;
}

asio::awaitable<std::optional<Failure>> Client::Impl::open_tunnel(boost::beast::tcp_stream& tcp, const Endpoint& target,
                                                                   const AttemptDeadlines& deadlines) {
  const std::string authority =
      (target.host.find(':') != std::string::npos ? "[" + target.host + "]" : target.host) + ":" + target.port;
  http::request<http::empty_body> request{http::verb::connect, authority, 11};
  request.set(http::field::host, authority);
  request.set(http::field::user_agent, "turnout");
  if (!proxy->authorization.empty()) request.set(http::field::proxy_authorization, proxy->authorization);
  auto [write_error, bytes_written] = co_await http::async_write(tcp, request, nothrow_awaitable);
  if (write_error) co_return detail::classify_error(write_error, Phase::connect, proxy->proxy, deadlines.connect_limit);

  boost::beast::flat_buffer buffer;
  http::response_parser<http::empty_body> response;
  response.skip(true);  // a response to CONNECT has no body: the tunnel follows the head
  auto [read_error, bytes_read] = co_await http::async_read_header(tcp, buffer, response, nothrow_awaitable);
  if (read_error) co_return detail::classify_error(read_error, Phase::connect, proxy->proxy, deadlines.connect_limit);
  const unsigned status = response.get().result_int();
  if (status < 200 || status >= 300)
    co_return Failure{FailureKind::connect, fmt::format("the proxy {}:{} refused a tunnel to {} (HTTP {})",
                                                        proxy->proxy.host, proxy->proxy.port, authority, status)};
  // The server speaks only after the TLS client hello, so nothing may follow the head yet.
  if (buffer.size() != 0)
    co_return Failure{FailureKind::malformed,
                      fmt::format("the proxy {}:{} sent bytes after its CONNECT answer", proxy->proxy.host, proxy->proxy.port)};
  co_return std::nullopt;
}

// Sends the request and reads the response head, on a pooled connection when one is idle.
// A pooled connection lost to the keep-alive race (an error before any response byte, or
// a 408 the server sent on it while it was idle: closing, and there at once) is replaced by a fresh one, once: a fresh
// connection has reused == false, so the loop turns at most twice.
asio::awaitable<Result<std::unique_ptr<Connection>, Failure>> Client::Impl::exchange_head(
    const Request& request, const AttemptDeadlines& deadlines, std::optional<HeadParser>& head) {
  const Endpoint& endpoint = *request.endpoint;
  std::unique_ptr<Connection> connection = pool->take(endpoint, Clock::now());

  for (;;) {
    head.reset();
    if (!connection) {
      auto connected = co_await connect(endpoint, deadlines);
      if (!connected) co_return connected.error();
      connection = std::move(*connected);
    }

    // Head and body in one gather write (one writev on plain TCP; a TLS stream writes a
    // record per buffer); the body is not copied.
    std::string& head_text = connection->request_head();
    head_text.clear();
    detail::append_request_head(head_text, request);
    const std::array<asio::const_buffer, 2> message{asio::buffer(head_text), asio::buffer(request.body)};
    static_assert(std::tuple_size_v<decltype(message)> <= kSendNowMaxPieces);
    // On plain TCP what the socket takes now goes out here (common/inline_io.hpp); the
    // async write, under the deadline, only carries a rest it had no room for.
    error_code write_error;
    std::size_t sent = 0;
    if (!connection->is_tls()) sent = send_now(connection->tcp().socket(), message, write_error);
    if (!write_error && sent < head_text.size() + request.body.size()) {
      beast::buffers_suffix<std::array<asio::const_buffer, 2>> rest(message);
      rest.consume(sent);
      connection->deadline().begin(deadlines.total);
      auto [async_error, bytes_written] = co_await connection->visit(
          [&](auto& stream) { return asio::async_write(stream, rest, nothrow_awaitable); });
      (void)bytes_written;
      write_error = detail::end_under_deadline(*connection, async_error);
    }
    error_code error = write_error;
    Phase phase = Phase::write;
    Clock::duration limit = deadlines.total_limit;
    Clock::duration head_wait{};  // from the request's last byte written to the head read
    if (!error) {
      const auto written = Clock::now();
      connection->deadline().begin(deadlines.first_byte(written));
      limit = deadlines.first_byte_limit_for(written);
      head.emplace();
      head->header_limit(kMaxResponseHeaderBytes);
      // beast's own default (8 MB for a response) would refuse a larger Content-Length here,
      // as a malformed head; the caller applies the provider's max_response_bytes instead.
      head->body_limit(boost::none);
      auto [read_error, bytes_read] = co_await connection->visit([&](auto& stream) {
        return http::async_read_header(stream, connection->buffer(), *head, nothrow_awaitable);
      });
      error = detail::end_under_deadline(*connection, read_error);
      phase = Phase::response_head;
      head_wait = Clock::now() - written;
    }
    if (!error) {
      if (!connection->reused ||
          !detail::is_stale_connection_answer(head->get().result_int(), head->get().keep_alive(), head_wait))
        co_return std::move(connection);
      connection.reset();  // its 408 was sent before our request arrived: resend on a fresh one
      continue;
    }

    const bool response_started = head && (head->got_some() || connection->buffer().size() > 0);
    const bool retry = connection->reused && detail::is_stale_connection_error(error, phase, response_started);
    connection.reset();
    if (!retry) co_return detail::classify_error(error, phase, endpoint, limit);
  }
}

Client::Client(asio::any_io_executor executor, std::shared_ptr<asio::ssl::context> tls,
               std::shared_ptr<const ProxyConfig> proxy)
    : impl_(std::make_unique<Impl>()) {
  impl_->executor = std::move(executor);
  impl_->tls = std::move(tls);
  impl_->proxy = std::move(proxy);
}

Client::~Client() = default;

void Client::close_idle() { impl_->pool->close_all(); }

asio::awaitable<Result<Response, Failure>> Client::send(const Request& request) {
  if (!request.endpoint) co_return missing_endpoint();
  const AttemptDeadlines deadlines(request);
  std::optional<HeadParser> head;
  auto exchanged = co_await impl_->exchange_head(request, deadlines, head);
  if (!exchanged) co_return exchanged.error();
  auto connection = std::move(*exchanged);

  http::response_parser<http::string_body> parser(std::move(*head));
  parser.body_limit(request.max_response_bytes);
  // A declared length over the limit is refused before a byte of the body is read.
  if (parser.content_length() && *parser.content_length() > request.max_response_bytes)
    co_return Failure{FailureKind::too_large,
                      fmt::format("the response body from {}:{} is larger than {} bytes ({} declared)",
                                  request.endpoint->host, request.endpoint->port, request.max_response_bytes,
                                  *parser.content_length())};
  if (!parser.is_done()) {
    // Beast's own reserve (the declared length) does not shrink this one.
    if (request.response_room != 0 && parser.content_length())
      parser.get().body().reserve(static_cast<std::size_t>(*parser.content_length()) + request.response_room);
    // The head's read usually brought the whole body: parsed here, the socket read only
    // for what is missing.
    BufferedOnly buffered_only;
    error_code error;
    http::read(buffered_only, connection->buffer(), parser, error);
    if (needs_socket(error)) {
      connection->deadline().begin(deadlines.total);
      auto [read_error, bytes_read] = co_await connection->visit([&](auto& stream) {
        return http::async_read(stream, connection->buffer(), parser, nothrow_awaitable);
      });
      (void)bytes_read;
      error = detail::end_under_deadline(*connection, read_error);
    }
    if (error == http::error::body_limit)
      co_return Failure{FailureKind::too_large, fmt::format("the response body from {}:{} is larger than {} bytes",
                                                            request.endpoint->host, request.endpoint->port,
                                                            request.max_response_bytes)};
    if (error)
      co_return detail::classify_error(error, Phase::response_body, *request.endpoint, deadlines.total_limit);
  }

  Response response;
  response.status = parser.get().result_int();
  response.content_type = header_value(parser, http::field::content_type).value_or(std::string());
  response.retry_after = header_value(parser, http::field::retry_after);
  const bool reusable = can_reuse(parser, *connection);
  response.body = std::move(parser.get().body());
  if (reusable) impl_->pool->give_back(std::move(connection), Clock::now());
  co_return response;
}

asio::awaitable<Result<ResponseStream, Failure>> Client::open_stream(const Request& request,
                                                                     Clock::duration idle_timeout) {
  if (!request.endpoint) co_return missing_endpoint();
  const AttemptDeadlines deadlines(request);
  std::optional<HeadParser> head;
  auto exchanged = co_await impl_->exchange_head(request, deadlines, head);
  if (!exchanged) co_return exchanged.error();

  auto state = std::make_unique<ResponseStream::State>();
  state->pool = impl_->pool;
  state->connection = std::move(*exchanged);
  state->parser.emplace(std::move(*head));
  state->parser->body_limit(boost::none);  // next() counts the bytes against max_body_bytes
  state->max_body_bytes = request.max_response_bytes;
  state->idle_since = Clock::now();
  state->idle_timeout = idle_timeout;
  state->total_deadline = deadlines.total;
  state->total_limit = deadlines.total_limit;
  state->status = state->parser->get().result_int();
  state->content_type = header_value(*state->parser, http::field::content_type).value_or(std::string());
  state->retry_after = header_value(*state->parser, http::field::retry_after);
  co_return ResponseStream(std::move(state));
}

}  // namespace turnout::upstream
