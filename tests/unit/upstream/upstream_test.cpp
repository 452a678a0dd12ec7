// The upstream client against an in-test stand-in provider (Beast, 127.0.0.1:0): what the
// provider receives, connection reuse and the keep-alive race, every failure kind, TLS
// verification, and incremental streaming.
#include "upstream/client.hpp"
#include "upstream/connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <limits>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace upstream = turnout::upstream;
using asio::ip::tcp;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr auto nothrow_awaitable = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view kSecretKey = "sk-test-secret-0123456789";

// Runs `task` on `io` until it completes and returns its result.
template <class T>
T run(asio::io_context& io, asio::awaitable<T> task) {
  std::optional<T> result;
  std::exception_ptr failure;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr error, T value) {
    failure = error;
    if (!error) result.emplace(std::move(value));
    io.stop();
  });
  io.restart();
  io.run();
  if (failure) std::rethrow_exception(failure);
  return std::move(*result);
}

// Lets the io_context process pending work (e.g. a server noticing a closed socket).
void settle(asio::io_context& io, milliseconds duration = milliseconds(50)) {
  io.restart();
  io.run_for(duration);
}

// ---------------------------------------------------------------------------------------
// The stand-in provider

using Headers = std::vector<std::pair<std::string, std::string>>;

class ServerConnection {
 public:
  using TlsStream = beast::ssl_stream<beast::tcp_stream>;

  ServerConnection(tcp::socket socket, asio::ssl::context* tls,
                   std::vector<http::request<http::string_body>>& requests)
      : stream_(make_stream(std::move(socket), tls)), requests_(requests) {}

  // Reads one request and records it; false when the client closed the connection.
  asio::awaitable<bool> read_request() {
    http::request_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    auto [error, bytes] = co_await std::visit(
        [&](auto& stream) { return http::async_read(stream, buffer_, parser, nothrow_awaitable); }, stream_);
    if (error) co_return false;
    requests_.push_back(parser.release());
    co_return true;
  }

  asio::awaitable<void> write(std::string_view raw) {
    co_await std::visit(
        [&](auto& stream) { return asio::async_write(stream, asio::buffer(raw), nothrow_awaitable); }, stream_);
  }

  asio::awaitable<void> respond(unsigned status, std::string body,
                                Headers headers = {}) {
    http::response<http::string_body> response{static_cast<http::status>(status), 11};
    response.set(http::field::content_type, "application/json");
    for (const auto& [name, value] : headers) response.set(name, value);
    response.body() = std::move(body);
    response.prepare_payload();
    co_await std::visit(
        [&](auto& stream) { return http::async_write(stream, response, nothrow_awaitable); }, stream_);
  }

  // Waits until the client closes the connection (or sends more).
  asio::awaitable<void> wait_for_close() {
    std::array<char, 256> scratch;
    for (;;) {
      auto [error, bytes] = co_await std::visit(
          [&](auto& stream) { return stream.async_read_some(asio::buffer(scratch), nothrow_awaitable); }, stream_);
      if (error) co_return;
    }
  }

  void close() {
    beast::error_code ignored;
    std::visit([&](auto& stream) { beast::get_lowest_layer(stream).socket().close(ignored); }, stream_);
  }

  TlsStream* tls() { return std::get_if<TlsStream>(&stream_); }

 private:
  static std::variant<beast::tcp_stream, TlsStream> make_stream(tcp::socket socket, asio::ssl::context* tls) {
    if (tls) return std::variant<beast::tcp_stream, TlsStream>(std::in_place_type<TlsStream>, std::move(socket), *tls);
    return std::variant<beast::tcp_stream, TlsStream>(std::in_place_type<beast::tcp_stream>, std::move(socket));
  }

  std::variant<beast::tcp_stream, TlsStream> stream_;
  beast::flat_buffer buffer_;
  std::vector<http::request<http::string_body>>& requests_;
};

// Accepts on 127.0.0.1:0 and runs `handler` for each connection (numbered from 0).
class TestServer {
 public:
  using Handler = std::function<asio::awaitable<void>(ServerConnection&, int connection_index)>;

  TestServer(asio::io_context& io, Handler handler, asio::ssl::context* tls = nullptr)
      : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        handler_(std::move(handler)),
        tls_(tls) {
    asio::co_spawn(io, accept_loop(), asio::detached);
  }

  std::string port() const { return std::to_string(acceptor_.local_endpoint().port()); }
  int accepts() const { return accepts_; }
  const std::vector<http::request<http::string_body>>& requests() const { return requests_; }
  const std::string& last_server_name() const { return last_server_name_; }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [error, socket] = co_await acceptor_.async_accept(nothrow_awaitable);
      if (error) co_return;
      asio::co_spawn(acceptor_.get_executor(), serve(std::move(socket), accepts_++), asio::detached);
    }
  }

  asio::awaitable<void> serve(tcp::socket socket, int index) {
    ServerConnection connection(std::move(socket), tls_, requests_);
    if (auto* tls = connection.tls()) {
      auto [error] = co_await tls->async_handshake(asio::ssl::stream_base::server, nothrow_awaitable);
      if (error) co_return;
      const char* name = SSL_get_servername(tls->native_handle(), TLSEXT_NAMETYPE_host_name);
      last_server_name_ = name ? name : "";
    }
    co_await handler_(connection, index);
  }

  tcp::acceptor acceptor_;
  Handler handler_;
  asio::ssl::context* tls_;
  int accepts_ = 0;
  std::vector<http::request<http::string_body>> requests_;
  std::string last_server_name_;
};

// Answers every request on the connection with 200 and `body`.
TestServer::Handler answer_all(std::string body) {
  return [body = std::move(body)](ServerConnection& connection, int) -> asio::awaitable<void> {
    while (co_await connection.read_request()) co_await connection.respond(200, body);
  };
}

// ---------------------------------------------------------------------------------------
// Fixture

class UpstreamClientTest : public ::testing::Test {
 protected:
  // Requests point at their Endpoint, so the fixture keeps each one alive.
  const upstream::Endpoint& local_endpoint(const TestServer& server, std::string host = "127.0.0.1",
                                           bool tls = false) {
    return endpoints_.emplace_back(upstream::Endpoint{tls, std::move(host), server.port(), "/v1"});
  }

  upstream::Request chat_request(const upstream::Endpoint& endpoint, std::string body = R"({"model":"m"})") {
    provider_.name = "test";
    provider_.api_key = std::string(kSecretKey);
    auto request = upstream::make_chat_request(provider_, endpoint, "gpt-4o-mini", std::move(body), "req-42");
    request.timeout = std::chrono::seconds(10);
    request.connect_timeout = std::chrono::seconds(5);
    return request;
  }

  turnout::Result<upstream::Response, upstream::Failure> send(upstream::Client& client,
                                                               const upstream::Request& request) {
    return run(io_, client.send(request));
  }

  static void expect_no_secret(const upstream::Failure& failure) {
    EXPECT_EQ(failure.message.find(kSecretKey), std::string::npos) << failure.message;
    EXPECT_EQ(failure.message.find("Bearer"), std::string::npos) << failure.message;
  }

  std::deque<upstream::Endpoint> endpoints_;
  asio::io_context io_;
  upstream::Client client_{io_.get_executor(), upstream::make_client_tls_context()};
  turnout::config::ProviderConfig provider_;
};

// ---------------------------------------------------------------------------------------
// parse_base_url and make_chat_request

TEST(ParseBaseUrl, HttpsWithDefaultPortAndPath) {
  auto endpoint = upstream::parse_base_url("https://api.openai.com/v1");
  ASSERT_TRUE(endpoint) << endpoint.error().message;
  EXPECT_TRUE(endpoint->tls);
  EXPECT_EQ(endpoint->host, "api.openai.com");
  EXPECT_EQ(endpoint->port, "443");
  EXPECT_EQ(endpoint->base_path, "/v1");
}

TEST(ParseBaseUrl, HttpWithPortAndTrailingSlash) {
  auto endpoint = upstream::parse_base_url("http://localhost:11434/api/v1/");
  ASSERT_TRUE(endpoint) << endpoint.error().message;
  EXPECT_FALSE(endpoint->tls);
  EXPECT_EQ(endpoint->host, "localhost");
  EXPECT_EQ(endpoint->port, "11434");
  EXPECT_EQ(endpoint->base_path, "/api/v1");
}

TEST(ParseBaseUrl, HttpDefaultPortAndEmptyPath) {
  auto endpoint = upstream::parse_base_url("http://example.com/");
  ASSERT_TRUE(endpoint) << endpoint.error().message;
  EXPECT_EQ(endpoint->port, "80");
  EXPECT_EQ(endpoint->base_path, "");
}

TEST(ParseBaseUrl, Ipv6LiteralLosesBrackets) {
  auto endpoint = upstream::parse_base_url("http://[::1]:8080/v1");
  ASSERT_TRUE(endpoint) << endpoint.error().message;
  EXPECT_EQ(endpoint->host, "::1");
  EXPECT_EQ(endpoint->port, "8080");
}

TEST(ParseBaseUrl, RejectsWhatCannotBeAnUpstream) {
  for (const char* bad : {"ftp://example.com/v1", "example.com/v1", "http:///v1", "https://example.com/v1?x=1",
                          "https://example.com/v1#frag", "https://user:pw@example.com/v1", ""}) {
    auto endpoint = upstream::parse_base_url(bad);
    EXPECT_FALSE(endpoint) << bad;
    if (!endpoint) {
      EXPECT_EQ(endpoint.error().message.find("pw"), std::string::npos);
    }
  }
}

TEST(MakeChatRequest, OpenAiForm) {
  turnout::config::ProviderConfig provider;
  provider.api_key = "sk-abc";
  provider.timeout_s = 30;
  provider.connect_timeout_s = 2.5;
  provider.headers = {{"OpenAI-Organization", "org-1"}};
  const upstream::Endpoint endpoint{true, "api.openai.com", "443", "/v1"};
  auto request = upstream::make_chat_request(provider, endpoint, "gpt-4o", "{}", "req-1");

  EXPECT_EQ(request.target, "/v1/chat/completions");
  EXPECT_EQ(request.body, "{}");
  EXPECT_EQ(request.timeout, std::chrono::seconds(30));
  EXPECT_EQ(request.connect_timeout, milliseconds(2500));
  const std::vector<std::pair<std::string, std::string>> expected{{"Authorization", "Bearer sk-abc"},
                                                                  {"Content-Type", "application/json"},
                                                                  {"x-request-id", "req-1"},
                                                                  {"OpenAI-Organization", "org-1"}};
  EXPECT_EQ(request.headers, expected);
}

TEST(MakeChatRequest, NoAuthorizationWithoutKey) {
  turnout::config::ProviderConfig provider;
  const upstream::Endpoint endpoint{false, "localhost", "8000", ""};
  auto request = upstream::make_chat_request(provider, endpoint, "llama3", "{}", "req-1");
  EXPECT_EQ(request.target, "/chat/completions");
  for (const auto& header : request.headers) EXPECT_NE(header.first, "Authorization");
}

TEST(MakeChatRequest, AzureForm) {
  turnout::config::ProviderConfig provider;
  provider.type = turnout::config::ProviderType::azure;
  provider.api_key = "azure-key";
  provider.api_version = "2024-06-01";
  const upstream::Endpoint endpoint{true, "res.openai.azure.com", "443", ""};
  auto request = upstream::make_chat_request(provider, endpoint, "my deploy/4o", "{}", "req-1");
  EXPECT_EQ(request.target, "/openai/deployments/my%20deploy%2F4o/chat/completions?api-version=2024-06-01");
  const std::vector<std::pair<std::string, std::string>> expected{
      {"api-key", "azure-key"}, {"Content-Type", "application/json"}, {"x-request-id", "req-1"}};
  EXPECT_EQ(request.headers, expected);
}

// ---------------------------------------------------------------------------------------
// send(): what arrives, and reuse

TEST_F(UpstreamClientTest, ProviderReceivesTargetHeadersAndBody) {
  TestServer server(io_, answer_all(R"({"id":"chatcmpl-1"})"));
  provider_.headers = {{"X-Extra", "yes"}};
  const auto endpoint = local_endpoint(server);
  const std::string body = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]})";
  auto result = send(client_, chat_request(endpoint, body));

  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(result->status, 200u);
  EXPECT_EQ(result->content_type, "application/json");
  EXPECT_EQ(result->body, R"({"id":"chatcmpl-1"})");
  EXPECT_FALSE(result->retry_after);

  ASSERT_EQ(server.requests().size(), 1u);
  const auto& received = server.requests()[0];
  EXPECT_EQ(received.method(), http::verb::post);
  EXPECT_EQ(received.target(), "/v1/chat/completions");
  EXPECT_EQ(received[http::field::host], "127.0.0.1:" + server.port());
  EXPECT_EQ(received[http::field::authorization], "Bearer " + std::string(kSecretKey));
  EXPECT_EQ(received[http::field::content_type], "application/json");
  EXPECT_EQ(received["x-request-id"], "req-42");
  EXPECT_EQ(received["X-Extra"], "yes");
  EXPECT_EQ(received[http::field::content_length], std::to_string(body.size()));
  EXPECT_TRUE(received.keep_alive());
  EXPECT_EQ(received.body(), body);
}

// The gateway appends cost_usd and latency_ms to a buffered answer: with the room reserved
// while the body is read, that append does not copy the body (issue 16).
TEST_F(UpstreamClientTest, ResponseRoomIsReservedPastTheDeclaredLength) {
  const std::string answer = R"({"id":")" + std::string(2000, 'a') + R"("})";
  TestServer server(io_, answer_all(answer));
  auto request = chat_request(local_endpoint(server));
  request.response_room = 96;
  auto result = send(client_, request);

  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(result->body, answer);
  EXPECT_GE(result->body.capacity(), answer.size() + 96);
}

TEST_F(UpstreamClientTest, AzureRequestAsReceived) {
  TestServer server(io_, answer_all("{}"));
  provider_.type = turnout::config::ProviderType::azure;
  provider_.api_version = "2024-06-01";
  const upstream::Endpoint endpoint{false, "127.0.0.1", server.port(), ""};
  auto result = send(client_, chat_request(endpoint));

  ASSERT_TRUE(result) << result.error().message;
  ASSERT_EQ(server.requests().size(), 1u);
  const auto& received = server.requests()[0];
  EXPECT_EQ(received.target(), "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-06-01");
  EXPECT_EQ(received["api-key"], kSecretKey);
  EXPECT_EQ(received.find(http::field::authorization), received.end());
}

TEST_F(UpstreamClientTest, SecondRequestReusesTheConnection) {
  TestServer server(io_, answer_all("{}"));
  const auto endpoint = local_endpoint(server);
  const auto request = chat_request(endpoint);
  ASSERT_TRUE(send(client_, request));
  ASSERT_TRUE(send(client_, request));
  ASSERT_TRUE(send(client_, request));
  EXPECT_EQ(server.requests().size(), 3u);
  EXPECT_EQ(server.accepts(), 1);
}

TEST_F(UpstreamClientTest, CloseIdleDropsPooledConnections) {
  TestServer server(io_, answer_all("{}"));
  const auto endpoint = local_endpoint(server);
  const auto request = chat_request(endpoint);
  ASSERT_TRUE(send(client_, request));
  client_.close_idle();
  ASSERT_TRUE(send(client_, request));
  EXPECT_EQ(server.accepts(), 2);
}

TEST_F(UpstreamClientTest, ConnectionCloseResponseIsNotPooled) {
  TestServer server(io_, [](ServerConnection& connection, int) -> asio::awaitable<void> {
    // (Named, not a temporary: g++ 12 cannot put a braced list inside a co_await.)
    Headers closing{{"Connection", "close"}};
    if (co_await connection.read_request()) co_await connection.respond(200, "{}", std::move(closing));
    connection.close();
  });
  const auto request = chat_request(local_endpoint(server));
  ASSERT_TRUE(send(client_, request));
  ASSERT_TRUE(send(client_, request));
  EXPECT_EQ(server.accepts(), 2);
}

// The server closes a keep-alive connection after answering, without saying so: the next
// call must not fail because of it.
TEST_F(UpstreamClientTest, IdleConnectionClosedByServerIsNotUsed) {
  TestServer server(io_, [](ServerConnection& connection, int) -> asio::awaitable<void> {
    if (co_await connection.read_request()) co_await connection.respond(200, "{}");
    connection.close();
  });
  const auto request = chat_request(local_endpoint(server));
  ASSERT_TRUE(send(client_, request));
  settle(io_);
  auto second = send(client_, request);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(server.accepts(), 2);
}

// The keep-alive race proper: the request is written to a pooled connection that the
// server then closes without answering. It is resent once on a fresh connection.
TEST_F(UpstreamClientTest, PooledConnectionLostBeforeResponseIsRetriedOnce) {
  TestServer server(io_, [](ServerConnection& connection, int index) -> asio::awaitable<void> {
    if (index == 0) {
      if (co_await connection.read_request()) co_await connection.respond(200, R"({"n":1})");
      co_await connection.read_request();  // the second request arrives; drop it unanswered
      connection.close();
      co_return;
    }
    while (co_await connection.read_request()) co_await connection.respond(200, R"({"n":2})");
  });
  const auto request = chat_request(local_endpoint(server));
  ASSERT_TRUE(send(client_, request));
  auto second = send(client_, request);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->body, R"({"n":2})");
  EXPECT_EQ(server.accepts(), 2);
  EXPECT_EQ(server.requests().size(), 3u);
}

// The server's keep-alive timeout (under the pool's 1 s probe threshold) ends right after
// the first answer: it sends 408 on the idle connection and closes. The next call, made
// well within that second on the pooled connection, reads that 408; it was no answer to
// this call, so the call is resent on a fresh connection and gets the real one.
TEST_F(UpstreamClientTest, PooledConnectionsIdle408IsRetriedOnAFreshConnection) {
  TestServer server(io_, [](ServerConnection& connection, int index) -> asio::awaitable<void> {
    if (index == 0) {
      if (co_await connection.read_request()) co_await connection.respond(200, R"({"n":1})");
      // Later than the answer, so the client has pooled the connection before the 408 comes.
      asio::steady_timer pause(co_await asio::this_coro::executor, milliseconds(20));
      co_await pause.async_wait(nothrow_awaitable);
      co_await connection.write(
          "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      co_await connection.read_request();  // consumed so that the close is a FIN, not a reset
      connection.close();
      co_return;
    }
    while (co_await connection.read_request()) co_await connection.respond(200, R"({"n":2})");
  });
  const auto request = chat_request(local_endpoint(server));
  ASSERT_TRUE(send(client_, request));
  settle(io_);  // the 408 arrives and waits in the socket; the connection is still pooled
  auto second = send(client_, request);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->status, 200u);
  EXPECT_EQ(second->body, R"({"n":2})");
  EXPECT_EQ(server.accepts(), 2);
}

// An upstream that ran the request and then answers "408 Request Timeout" (OpenRouter,
// LiteLLM do) on the reused connection: that 408 is the answer, and resending it would run
// (and bill) the call twice. It comes after the request, not at once; with or without a close.
TEST_F(UpstreamClientTest, PooledConnections408AfterTheRequestRanIsTheAnswer) {
  for (const bool closing : {false, true}) {
    TestServer server(io_, [closing](ServerConnection& connection, int index) -> asio::awaitable<void> {
      if (index != 0) {  // a resend (the defect) gets an answer, so the test says what went wrong
        while (co_await connection.read_request()) co_await connection.respond(200, R"({"n":2})");
        co_return;
      }
      if (co_await connection.read_request()) co_await connection.respond(200, R"({"n":1})");
      if (!co_await connection.read_request()) co_return;
      asio::steady_timer running(co_await asio::this_coro::executor, milliseconds(200));
      co_await running.async_wait(nothrow_awaitable);
      co_await connection.write(closing ? "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
                                        : "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n");
      co_await connection.read_request();
      connection.close();
    });
    const auto request = chat_request(local_endpoint(server));
    ASSERT_TRUE(send(client_, request));
    auto second = send(client_, request);
    ASSERT_TRUE(second) << second.error().message;
    EXPECT_EQ(second->status, 408u) << "closing: " << closing;
    EXPECT_EQ(server.requests().size(), 2u) << "closing: " << closing;
    EXPECT_EQ(server.accepts(), 1) << "closing: " << closing;
  }
}

// A 408 that keeps the connection open was meant for this request, even when it comes at once.
TEST_F(UpstreamClientTest, PooledConnections408KeepingTheConnectionIsTheAnswer) {
  TestServer server(io_, [](ServerConnection& connection, int index) -> asio::awaitable<void> {
    if (index != 0) {
      while (co_await connection.read_request()) co_await connection.respond(200, R"({"n":2})");
      co_return;
    }
    if (co_await connection.read_request()) co_await connection.respond(200, R"({"n":1})");
    if (co_await connection.read_request()) co_await connection.respond(408, R"({"error":"timed out"})");
    co_await connection.read_request();
    connection.close();
  });
  const auto request = chat_request(local_endpoint(server));
  ASSERT_TRUE(send(client_, request));
  auto second = send(client_, request);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->status, 408u);
  EXPECT_EQ(server.requests().size(), 2u);
  EXPECT_EQ(server.accepts(), 1);
}

// On a fresh connection a 408 is the server's answer: it is returned, not resent.
TEST_F(UpstreamClientTest, FreshConnections408IsTheAnswer) {
  TestServer server(io_, [](ServerConnection& connection, int) -> asio::awaitable<void> {
    if (co_await connection.read_request()) co_await connection.respond(408, R"({"error":"slow"})");
    connection.close();
  });
  auto result = send(client_, chat_request(local_endpoint(server)));
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(result->status, 408u);
  EXPECT_EQ(server.accepts(), 1);
}

// A fresh connection that is dropped is a real failure: nothing is resent.
TEST_F(UpstreamClientTest, FreshConnectionDroppedIsResetWithoutRetry) {
  TestServer server(io_, [](ServerConnection& connection, int) -> asio::awaitable<void> {
    co_await connection.read_request();
    connection.close();
  });
  auto result = send(client_, chat_request(local_endpoint(server)));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, upstream::FailureKind::reset);
  EXPECT_EQ(server.accepts(), 1);
  expect_no_secret(result.error());
}

// ---------------------------------------------------------------------------------------
// send(): failures

TEST_F(UpstreamClientTest, RefusedConnectionIsConnectFailure) {
  std::string port;
  {
    tcp::acceptor closed_soon(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = std::to_string(closed_soon.local_endpoint().port());
  }
  const upstream::Endpoint endpoint{false, "127.0.0.1", port, "/v1"};
  auto result = send(client_, chat_request(endpoint));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, upstream::FailureKind::connect);
  EXPECT_NE(result.error().message.find("127.0.0.1:" + port), std::string::npos) << result.error().message;
  expect_no_secret(result.error());
}

TEST_F(UpstreamClientTest, SilentServerTimesOutWithinTheDeadline) {
  TestServer server(io_, [](ServerConnection& connection, int) -> asio::awaitable<void> {
    co_await connection.read_request();
    co_await connection.wait_for_close();
  });
  auto request = chat_request(local_endpoint(server));
  request.timeout = milliseconds(300);
  const auto started = Clock::now();
  auto result = send(client_, request);
  const auto elapsed = Clock::now() - started;

  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, upstream::FailureKind::timeout);
  EXPECT_GE(elapsed, milliseconds(300));
  EXPECT_LT(elapsed, milliseconds(3000));  // generous: only "it did not wait forever"
  expect_no_secret(result.error());
}

TEST_F(UpstreamClientTest, FirstByteTimeoutIsShorterThanTotal) {
  TestServer server(io_, [](ServerConnection& connection, int) -> asio::awaitable<void> {
    co_await connection.read_request();
    co_await connection.wait_for_close();
  });
  auto request = chat_request(local_endpoint(server));
  request.timeout = std::chrono::seconds(30);
  request.first_byte_timeout = milliseconds(200);
  const auto started = Clock::now();
  auto result = send(client_, request);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, upstream::FailureKind::timeout);
  EXPECT_NE(result.error().message.find("0.2 s"), std::string::npos) << result.error().message;
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(10));
}

TEST_F(UpstreamClientTest, TimedOutConnectionIsNotReused) {
  TestServer server(io_, [](ServerConnection& connection, int index) -> asio::awaitable<void> {
    if (index == 0) {
      co_await connection.read_request();
      co_await connection.wait_for_close();
      co_return;
    }
    while (co_await connection.read_request()) co_await connection.respond(200, "{}");
  });
  auto request = chat_request(local_endpoint(server));
  request.timeout = milliseconds(200);
  ASSERT_FALSE(send(client_, request));
  request.timeout = std::chrono::seconds(10);
  ASSERT_TRUE(send(client_, request));
  EXPECT_EQ(server.accepts(), 2);
}

TEST_F(UpstreamClientTest, CloseMidBodyIsReset) {
  TestServer server(io_, [](ServerConnection& connection, int) -> asio::awaitable<void> {
    co_await connection.read_request();
    co_await connection.write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":");
    connection.close();
  });
  auto result = send(client_, chat_request(local_endpoint(server)));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, upstream::FailureKind::reset) << result.error().message;
  expect_no_secret(result.error());
}

TEST_F(UpstreamClientTest, GarbageIsMalformed) {
  TestServer server(io_, [](ServerConnection& connection, int) -> asio::awaitable<void> {
    co_await connection.read_request();
    co_await connection.write("SSH-2.0-OpenSSH_9.2\r\nthis is not http\r\n\r\n");
    connection.close();
  });
  auto result = send(client_, chat_request(local_endpoint(server)));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, upstream::FailureKind::malformed) << result.error().message;
  expect_no_secret(result.error());
}

TEST_F(UpstreamClientTest, BodyOverTheDefaultLimitIsTooLarge) {
  TestServer server(io_, [](ServerConnection& connection, int) -> asio::awaitable<void> {
    co_await connection.read_request();
    co_await connection.write("HTTP/1.1 200 OK\r\nContent-Length: 67108865\r\n\r\n{");
    co_await connection.wait_for_close();
  });
  auto result = send(client_, chat_request(local_endpoint(server)));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, upstream::FailureKind::too_large) << result.error().message;
}

// ---------------------------------------------------------------------------------------
// send(): response shapes

TEST_F(UpstreamClientTest, RetryAfterIsCaptured) {
  TestServer server(io_, [](ServerConnection& connection, int) -> asio::awaitable<void> {
    Headers retry_after{{"Retry-After", "7"}};
    while (co_await connection.read_request())
      co_await connection.respond(429, R"({"error":{"message":"slow down"}})", retry_after);
  });
  auto result = send(client_, chat_request(local_endpoint(server)));
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(result->status, 429u);
  EXPECT_EQ(result->retry_after, std::optional<std::string>("7"));
  EXPECT_EQ(result->body, R"({"error":{"message":"slow down"}})");
}

TEST_F(UpstreamClientTest, LargeBodyArrivesIntact) {
  std::string large(8u << 20, '\0');
  for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>('a' + (i * 7919) % 26);
  TestServer server(io_, answer_all(large));
  auto result = send(client_, chat_request(local_endpoint(server), large));
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(result->body.size(), large.size());
  EXPECT_TRUE(result->body == large);
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_TRUE(server.requests()[0].body() == large);
}

TEST_F(UpstreamClientTest, ChunkedBodyIsDechunkedAndConnectionReused) {
  TestServer server(io_, [](ServerConnection& connection, int) -> asio::awaitable<void> {
    while (co_await connection.read_request())
      co_await connection.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  });
  const auto request = chat_request(local_endpoint(server));
  auto first = send(client_, request);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->body, "hello world");
  ASSERT_TRUE(send(client_, request));
  EXPECT_EQ(server.accepts(), 1);
}

// ---------------------------------------------------------------------------------------
// TLS

struct SelfSignedCertificate {
  std::string certificate_pem;
  std::string private_key_pem;
};

// A P-256 certificate for `dns_name`, valid for an hour, signed by its own key.
SelfSignedCertificate make_self_signed_certificate(const std::string& dns_name) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> certificate(X509_new(), X509_free);
  if (!key || !certificate) throw std::runtime_error("OpenSSL allocation failed");
  X509* cert = certificate.get();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key.get());
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(dns_name.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, cert, cert, nullptr, nullptr, 0);
  const std::string alt_name = "DNS:" + dns_name;
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, NID_subject_alt_name, alt_name.c_str());
  if (!extension) throw std::runtime_error("cannot build subjectAltName");
  X509_add_ext(cert, extension, -1);
  X509_EXTENSION_free(extension);
  if (X509_sign(cert, key.get(), EVP_sha256()) == 0) throw std::runtime_error("cannot sign certificate");

  auto to_pem = [](auto write) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    write(bio.get());
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
  };
  return {to_pem([&](BIO* bio) { PEM_write_bio_X509(bio, cert); }),
          to_pem([&](BIO* bio) { PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr); })};
}

class UpstreamTlsTest : public UpstreamClientTest {
 protected:
  UpstreamTlsTest() : certificate_(make_self_signed_certificate("localhost")) {
    server_tls_.use_certificate_chain(asio::buffer(certificate_.certificate_pem));
    server_tls_.use_private_key(asio::buffer(certificate_.private_key_pem), asio::ssl::context::pem);
  }

  // Like make_client_tls_context(), but trusting only the test certificate.
  std::shared_ptr<asio::ssl::context> trusting_client_context() const {
    auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    context->add_certificate_authority(asio::buffer(certificate_.certificate_pem));
    context->set_verify_mode(asio::ssl::verify_peer);
    return context;
  }

  SelfSignedCertificate certificate_;
  asio::ssl::context server_tls_{asio::ssl::context::tls_server};
};

TEST_F(UpstreamTlsTest, TrustedCertificateWorksWithSniAndReuse) {
  TestServer server(io_, answer_all(R"({"tls":true})"), &server_tls_);
  upstream::Client client(io_.get_executor(), trusting_client_context());
  const auto endpoint = local_endpoint(server, "localhost", true);
  const auto request = chat_request(endpoint);
  auto result = send(client, request);
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(result->body, R"({"tls":true})");
  EXPECT_EQ(server.last_server_name(), "localhost");
  EXPECT_EQ(server.requests()[0][http::field::host], "localhost:" + server.port());
  ASSERT_TRUE(send(client, request));
  EXPECT_EQ(server.accepts(), 1);
}

TEST_F(UpstreamTlsTest, SystemStoreRejectsSelfSignedCertificate) {
  TestServer server(io_, answer_all("{}"), &server_tls_);
  const auto endpoint = local_endpoint(server, "localhost", true);
  auto result = send(client_, chat_request(endpoint));  // client_ uses make_client_tls_context()
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, upstream::FailureKind::connect);
  EXPECT_NE(result.error().message.find("certificate verify failed"), std::string::npos) << result.error().message;
  expect_no_secret(result.error());
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(UpstreamTlsTest, CertificateForAnotherNameIsRejected) {
  TestServer server(io_, answer_all("{}"), &server_tls_);
  upstream::Client client(io_.get_executor(), trusting_client_context());
  const auto endpoint = local_endpoint(server, "127.0.0.1", true);  // the certificate names "localhost"
  auto result = send(client, chat_request(endpoint));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, upstream::FailureKind::connect) << result.error().message;
  EXPECT_TRUE(server.requests().empty());
}

// ---------------------------------------------------------------------------------------
// Streaming

constexpr std::string_view kStreamHead =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

std::string chunk(std::string_view data) {
  char size[16];
  const int length = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return std::string(size, static_cast<std::size_t>(length)).append(data).append("\r\n");
}

// What a test coroutine saw of a stream.
struct StreamOutcome {
  unsigned status = 0;
  std::string content_type;
  std::string body;
  std::optional<upstream::Failure> failure;
  bool second_event_sent_before_first_was_seen = true;
};

// Reads pieces until `body` holds at least `size` bytes, the end, or a failure.
asio::awaitable<void> read_into(upstream::ResponseStream& stream, StreamOutcome& outcome, std::size_t size) {
  while (outcome.body.size() < size) {
    auto piece = co_await stream.next();
    if (!piece) {
      outcome.failure = piece.error();
      co_return;
    }
    if (!*piece) co_return;
    outcome.body.append(**piece);
  }
}

TEST_F(UpstreamClientTest, StreamDeliversEachEventBeforeTheNextIsSent) {
  asio::steady_timer gate(io_, asio::steady_timer::time_point::max());
  bool second_event_sent = false;
  TestServer server(io_, [&](ServerConnection& connection, int) -> asio::awaitable<void> {
    while (co_await connection.read_request()) {
      co_await connection.write(kStreamHead);
      co_await connection.write(chunk("data: one\n\n"));
      co_await gate.async_wait(nothrow_awaitable);
      second_event_sent = true;
      co_await connection.write(chunk("data: two\n\n") + "0\r\n\r\n");
    }
  });
  const auto request = chat_request(local_endpoint(server));

  auto outcome = run(io_, [&]() -> asio::awaitable<StreamOutcome> {
    StreamOutcome seen;
    auto stream = co_await client_.open_stream(request, std::chrono::seconds(5));
    if (!stream) {
      seen.failure = stream.error();
      co_return seen;
    }
    seen.status = stream->status();
    seen.content_type = stream->content_type();
    co_await read_into(*stream, seen, std::string_view("data: one\n\n").size());
    seen.second_event_sent_before_first_was_seen = second_event_sent;
    gate.expires_after(std::chrono::seconds(0));  // releases the server, now and for later requests
    co_await read_into(*stream, seen, std::string::npos);
    co_return seen;
  }());

  ASSERT_FALSE(outcome.failure) << outcome.failure->message;
  EXPECT_EQ(outcome.status, 200u);
  EXPECT_EQ(outcome.content_type, "text/event-stream");
  EXPECT_FALSE(outcome.second_event_sent_before_first_was_seen);
  EXPECT_EQ(outcome.body, "data: one\n\ndata: two\n\n");

  // A stream read to the end gives its connection back to the pool.
  auto after = send(client_, request);
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(after->body, "data: one\n\ndata: two\n\n");
  EXPECT_EQ(server.accepts(), 1);
}

TEST_F(UpstreamClientTest, StreamStallPastIdleTimeoutIsTimeout) {
  TestServer server(io_, [](ServerConnection& connection, int) -> asio::awaitable<void> {
    co_await connection.read_request();
    co_await connection.write(kStreamHead);
    co_await connection.write(chunk("data: one\n\n"));
    co_await connection.wait_for_close();
  });
  const auto request = chat_request(local_endpoint(server));
  const auto started = Clock::now();
  auto outcome = run(io_, [&]() -> asio::awaitable<StreamOutcome> {
    StreamOutcome seen;
    auto stream = co_await client_.open_stream(request, milliseconds(200));
    if (!stream) {
      seen.failure = stream.error();
      co_return seen;
    }
    co_await read_into(*stream, seen, std::string::npos);
    co_return seen;
  }());
  EXPECT_EQ(outcome.body, "data: one\n\n");
  ASSERT_TRUE(outcome.failure);
  EXPECT_EQ(outcome.failure->kind, upstream::FailureKind::timeout);
  EXPECT_NE(outcome.failure->message.find("made no progress for 0.2 s"), std::string::npos) << outcome.failure->message;
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(3));
}

// The stream names its upstream from its own connection, not from the caller's Endpoint,
// which may be gone (a reloaded config) and which holds the provider key in fixed_fields.
TEST_F(UpstreamClientTest, StreamFailureNamesTheUpstreamAfterTheEndpointIsGone) {
  TestServer server(io_, [](ServerConnection& connection, int) -> asio::awaitable<void> {
    co_await connection.read_request();
    co_await connection.write(kStreamHead);
    co_await connection.wait_for_close();
  });
  auto outcome = run(io_, [&]() -> asio::awaitable<StreamOutcome> {
    StreamOutcome seen;
    auto endpoint = std::make_unique<upstream::Endpoint>(upstream::Endpoint{false, "127.0.0.1", server.port(), "/v1"});
    upstream::add_fixed_fields(*endpoint, provider_);
    auto request = std::make_unique<upstream::Request>(chat_request(*endpoint));
    auto stream = co_await client_.open_stream(*request, milliseconds(100));
    request.reset();
    endpoint.reset();
    if (!stream) {
      seen.failure = stream.error();
      co_return seen;
    }
    co_await read_into(*stream, seen, std::string::npos);
    co_return seen;
  }());
  ASSERT_TRUE(outcome.failure);
  EXPECT_EQ(outcome.failure->message, "127.0.0.1:" + server.port() + " made no progress for 0.1 s");
  expect_no_secret(*outcome.failure);
}

TEST_F(UpstreamClientTest, StreamCutMidBodyIsReset) {
  TestServer server(io_, [](ServerConnection& connection, int) -> asio::awaitable<void> {
    co_await connection.read_request();
    co_await connection.write(kStreamHead);
    co_await connection.write(chunk("data: one\n\n"));
    connection.close();
  });
  const auto request = chat_request(local_endpoint(server));
  auto outcome = run(io_, [&]() -> asio::awaitable<StreamOutcome> {
    StreamOutcome seen;
    auto stream = co_await client_.open_stream(request, std::chrono::seconds(5));
    if (!stream) {
      seen.failure = stream.error();
      co_return seen;
    }
    co_await read_into(*stream, seen, std::string::npos);
    co_return seen;
  }());
  EXPECT_EQ(outcome.body, "data: one\n\n");
  ASSERT_TRUE(outcome.failure);
  EXPECT_EQ(outcome.failure->kind, upstream::FailureKind::reset) << outcome.failure->message;
  expect_no_secret(*outcome.failure);
}

TEST_F(UpstreamClientTest, CancelDuringReadClosesTheConnection) {
  bool server_saw_close = false;
  TestServer server(io_, [&](ServerConnection& connection, int index) -> asio::awaitable<void> {
    if (index > 0) {
      while (co_await connection.read_request()) co_await connection.respond(200, "{}");
      co_return;
    }
    co_await connection.read_request();
    co_await connection.write(kStreamHead);
    co_await connection.write(chunk("data: one\n\n"));
    co_await connection.wait_for_close();
    server_saw_close = true;
  });
  const auto request = chat_request(local_endpoint(server));
  auto outcome = run(io_, [&]() -> asio::awaitable<StreamOutcome> {
    StreamOutcome seen;
    auto stream = co_await client_.open_stream(request, std::chrono::seconds(5));
    if (!stream) {
      seen.failure = stream.error();
      co_return seen;
    }
    co_await read_into(*stream, seen, 1);
    // The downstream client "goes away" while the next read is pending.
    asio::steady_timer soon(io_, milliseconds(50));
    auto cancel_soon = [&]() -> asio::awaitable<void> {
      co_await soon.async_wait(nothrow_awaitable);
      stream->cancel();
    };
    asio::co_spawn(io_, cancel_soon(), asio::detached);
    co_await read_into(*stream, seen, std::string::npos);
    co_return seen;
  }());
  ASSERT_TRUE(outcome.failure);
  EXPECT_EQ(outcome.failure->kind, upstream::FailureKind::reset);
  EXPECT_NE(outcome.failure->message.find("cancelled"), std::string::npos) << outcome.failure->message;
  settle(io_);
  EXPECT_TRUE(server_saw_close);
  ASSERT_TRUE(send(client_, request));
  EXPECT_EQ(server.accepts(), 2);  // the cancelled connection was not pooled
}

TEST_F(UpstreamClientTest, UnfinishedStreamIsNotPooledWhenDropped) {
  TestServer server(io_, [](ServerConnection& connection, int index) -> asio::awaitable<void> {
    while (co_await connection.read_request()) {
      if (index > 0) {
        co_await connection.respond(200, "{}");
        continue;
      }
      co_await connection.write(kStreamHead);
      co_await connection.write(chunk("data: one\n\n"));
    }
  });
  const auto request = chat_request(local_endpoint(server));
  auto outcome = run(io_, [&]() -> asio::awaitable<StreamOutcome> {
    StreamOutcome seen;
    auto stream = co_await client_.open_stream(request, std::chrono::seconds(5));
    if (stream) co_await read_into(*stream, seen, 1);
    co_return seen;  // the stream is destroyed here, its body unfinished
  }());
  EXPECT_EQ(outcome.body, "data: one\n\n");
  ASSERT_TRUE(send(client_, request));
  EXPECT_EQ(server.accepts(), 2);
}

TEST_F(UpstreamClientTest, StreamErrorStatusBodyReadWhole) {
  TestServer server(io_, [](ServerConnection& connection, int) -> asio::awaitable<void> {
    Headers retry_after{{"Retry-After", "3"}};
    while (co_await connection.read_request())
      co_await connection.respond(429, R"({"error":{"message":"rate limited"}})", retry_after);
  });
  const auto request = chat_request(local_endpoint(server));
  struct ErrorOutcome {
    unsigned status = 0;
    std::optional<std::string> retry_after;
    std::string body;
  };
  auto outcome = run(io_, [&]() -> asio::awaitable<ErrorOutcome> {
    ErrorOutcome seen;
    auto stream = co_await client_.open_stream(request, std::chrono::seconds(5));
    if (!stream) co_return seen;
    seen.status = stream->status();
    seen.retry_after = stream->retry_after();
    auto body = co_await stream->read_rest();
    if (body) seen.body = std::move(*body);
    co_return seen;
  }());
  EXPECT_EQ(outcome.status, 429u);
  EXPECT_EQ(outcome.retry_after, std::optional<std::string>("3"));
  EXPECT_EQ(outcome.body, R"({"error":{"message":"rate limited"}})");
  ASSERT_TRUE(send(client_, request));
  EXPECT_EQ(server.accepts(), 1);
}

// ---------------------------------------------------------------------------------------
// The connection pool's limits

class ConnectionPoolTest : public ::testing::Test {
 protected:
  // A connected client-side Connection to a local acceptor (peer sockets kept open).
  std::unique_ptr<upstream::detail::Connection> connected() {
    auto connection = std::make_unique<upstream::detail::Connection>(io_.get_executor(), endpoint_, nullptr);
    connection->tcp().connect(acceptor_.local_endpoint());
    peers_.push_back(acceptor_.accept());
    return connection;
  }

  asio::io_context io_;
  tcp::acceptor acceptor_{io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  upstream::Endpoint endpoint_{false, "127.0.0.1", std::to_string(acceptor_.local_endpoint().port()), ""};
  std::vector<tcp::socket> peers_;
};

TEST_F(ConnectionPoolTest, IdleConnectionsExpire) {
  upstream::detail::ConnectionPool pool({.max_idle_per_upstream = 4, .max_idle_age = std::chrono::seconds(60)});
  const auto start = Clock::now();
  pool.give_back(connected(), start);
  auto reused = pool.take(endpoint_, start + std::chrono::seconds(59));
  ASSERT_NE(reused, nullptr);
  pool.give_back(std::move(reused), start);
  EXPECT_EQ(pool.take(endpoint_, start + std::chrono::seconds(61)), nullptr);
  EXPECT_EQ(pool.idle_count(), 0u);
}

TEST_F(ConnectionPoolTest, IdleConnectionsPerUpstreamAreCapped) {
  upstream::detail::ConnectionPool pool({.max_idle_per_upstream = 2, .max_idle_age = std::chrono::seconds(60)});
  const auto now = Clock::now();
  for (int i = 0; i < 3; ++i) pool.give_back(connected(), now);
  EXPECT_EQ(pool.idle_count(), 2u);
}

TEST_F(ConnectionPoolTest, OtherUpstreamsDoNotShare) {
  upstream::detail::ConnectionPool pool;
  pool.give_back(connected(), Clock::now());
  upstream::Endpoint other = endpoint_;
  other.tls = true;
  EXPECT_EQ(pool.take(other, Clock::now()), nullptr);
  EXPECT_NE(pool.take(endpoint_, Clock::now()), nullptr);
}

TEST_F(ConnectionPoolTest, PeerClosedConnectionIsDiscarded) {
  upstream::detail::ConnectionPool pool;
  const auto returned = Clock::now();
  pool.give_back(connected(), returned);
  peers_.back().close();
  std::this_thread::sleep_for(milliseconds(20));  // let the FIN arrive
  // Idle past probe_after_idle: probed, found closed.
  EXPECT_EQ(pool.take(endpoint_, returned + std::chrono::seconds(2)), nullptr);
}

// A connection back from a call moments ago is reused without a poll() per call; if its
// peer closed it meanwhile, the client's resend on a fresh connection covers it
// (IdleConnectionClosedByServerIsNotUsed, PooledConnectionLostBeforeResponseIsRetriedOnce).
TEST_F(ConnectionPoolTest, RecentlyReturnedConnectionIsNotProbed) {
  upstream::detail::ConnectionPool pool({.max_idle_per_upstream = 4,
                                         .max_idle_age = std::chrono::seconds(60),
                                         .probe_after_idle = std::chrono::seconds(1)});
  const auto returned = Clock::now();
  pool.give_back(connected(), returned);
  peers_.back().close();
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_NE(pool.take(endpoint_, returned + milliseconds(500)), nullptr);
}

// ---------------------------------------------------------------------------------------
// Response size: one limit (max_response_bytes) for every framing; deadlines that hold
// while the upstream keeps sending.

// Sends `piece` every `every` (zero: as fast as the reader takes it, so bytes are always
// waiting) until `for_at_most` has passed (so an unbounded reader ends).
TestServer::Handler endless(std::string head, std::string piece, milliseconds every,
                                    milliseconds for_at_most = milliseconds(5000)) {
  return [=](ServerConnection& connection, int) -> asio::awaitable<void> {
    co_await connection.read_request();
    co_await connection.write(head);
    asio::steady_timer timer(co_await asio::this_coro::executor);
    const auto until = Clock::now() + for_at_most;
    while (Clock::now() < until) {
      co_await connection.write(piece);
      if (every == milliseconds(0)) continue;
      timer.expires_after(every);
      co_await timer.async_wait(nothrow_awaitable);
    }
    connection.close();
  };
}

TEST_F(UpstreamClientTest, ContentLengthAboveEightMegabytesArrives) {
  // beast's default response body limit (8 MB) used to refuse this at the head, as a
  // "could not be reached" failure.
  const std::string large(9u << 20, 'z');
  TestServer server(io_, answer_all(large));
  auto result = send(client_, chat_request(local_endpoint(server)));
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(result->body.size(), large.size());
}

TEST_F(UpstreamClientTest, DeclaredLengthOverTheLimitIsTooLarge) {
  TestServer server(io_, answer_all(std::string(2000, 'z')));
  auto request = chat_request(local_endpoint(server));
  request.max_response_bytes = 1999;
  auto result = send(client_, request);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, upstream::FailureKind::too_large) << result.error().message;
  request.max_response_bytes = 2000;
  EXPECT_TRUE(send(client_, request));
}

TEST_F(UpstreamClientTest, ChunkedBodyOverTheLimitIsTooLarge) {
  TestServer server(io_, [](ServerConnection& connection, int) -> asio::awaitable<void> {
    co_await connection.read_request();
    co_await connection.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(std::string(600, 'a')) +
                              chunk(std::string(600, 'b')) + "0\r\n\r\n");
    co_await connection.wait_for_close();
  });
  auto request = chat_request(local_endpoint(server));
  request.max_response_bytes = 1000;
  auto result = send(client_, request);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, upstream::FailureKind::too_large) << result.error().message;
}

TEST_F(UpstreamClientTest, StreamedBodyOverTheLimitIsTooLarge) {
  TestServer server(io_, endless(std::string(kStreamHead), chunk("data: {}\n\n"), milliseconds(1)));
  auto request = chat_request(local_endpoint(server));
  request.max_response_bytes = 1000;
  auto outcome = run(io_, [&]() -> asio::awaitable<StreamOutcome> {
    StreamOutcome seen;
    auto stream = co_await client_.open_stream(request, std::chrono::seconds(10));
    if (stream) co_await read_into(*stream, seen, std::string::npos);
    co_return seen;
  }());
  ASSERT_TRUE(outcome.failure);
  EXPECT_EQ(outcome.failure->kind, upstream::FailureKind::too_large) << outcome.failure->message;
  EXPECT_LE(outcome.body.size(), 1000u);
}

TEST_F(UpstreamClientTest, EndlessStreamStopsAtTheTotalTimeout) {
  TestServer server(io_, endless(std::string(kStreamHead), chunk(std::string(4000, 'x') + "\n\n"), milliseconds(0)));
  auto request = chat_request(local_endpoint(server));
  request.timeout = milliseconds(400);
  // No size limit: at loopback speed the default one (64 MB) can end the stream first.
  request.max_response_bytes = std::numeric_limits<std::uint64_t>::max();
  const auto started = Clock::now();
  auto outcome = run(io_, [&]() -> asio::awaitable<StreamOutcome> {
    StreamOutcome seen;
    auto stream = co_await client_.open_stream(request, std::chrono::seconds(10));
    if (!stream) co_return seen;
    for (;;) {
      auto piece = co_await stream->next();
      if (!piece) {
        seen.failure = piece.error();
        co_return seen;
      }
      if (!*piece) co_return seen;
      stream->note_progress();  // every piece is a whole event: the idle timeout never binds
    }
  }());
  ASSERT_TRUE(outcome.failure);
  EXPECT_EQ(outcome.failure->kind, upstream::FailureKind::timeout) << outcome.failure->message;
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(2));
}

TEST_F(UpstreamClientTest, BytesWithoutProgressStillHitTheIdleTimeout) {
  // One event that never ends, a byte at a time: bytes flow, no event completes.
  TestServer server(io_, endless(std::string(kStreamHead) + chunk("data: "), chunk("x"), milliseconds(5)));
  const auto request = chat_request(local_endpoint(server));
  const auto started = Clock::now();
  auto outcome = run(io_, [&]() -> asio::awaitable<StreamOutcome> {
    StreamOutcome seen;
    auto stream = co_await client_.open_stream(request, milliseconds(300));
    if (stream) co_await read_into(*stream, seen, std::string::npos);
    co_return seen;
  }());
  ASSERT_TRUE(outcome.failure);
  EXPECT_EQ(outcome.failure->kind, upstream::FailureKind::timeout);
  EXPECT_NE(outcome.failure->message.find("made no progress for 0.3 s"), std::string::npos) << outcome.failure->message;
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(2));
}

}  // namespace
