#pragma once
// The upstream HTTP client: HTTP/1.1 over TCP or TLS (certificate verification against
// the system store, SNI), keep-alive connection pool, per-attempt deadlines. One Client
// per event-loop thread (it is not thread-safe; no locks on the hot path).
#include "common/result.hpp"
#include "config/config.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/assert/source_location.hpp>
#include <boost/beast/http/verb.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace turnout::upstream {

enum class FailureKind {
  connect,     // DNS, refused, unreachable, TLS handshake
  timeout,     // connect, first byte or total deadline passed
  reset,       // connection closed or reset before a complete response
  malformed,   // not parseable HTTP
  too_large,   // the response body passed the provider's max_response_bytes
};

struct Failure {
  FailureKind kind;
  std::string message;  // for logs and client-facing 502/504 messages; never holds a key
};

// Lets Result<T, Failure>::value() throw (found by argument-dependent lookup).
[[noreturn]] void throw_exception_from_error(const Failure& failure, const boost::source_location& loc);

// The provider's wire details, derived once per provider at start-up.
struct Endpoint {
  bool tls = true;
  std::string host;
  std::string port;       // "443"
  std::string base_path;  // "/v1" (no trailing slash)
  // The request head's fields that are the same on every call to this provider, as text:
  // User-Agent, the key, Content-Type and the provider's headers (a later one of a name
  // replacing an earlier one, framing fields left out), written once at config load by
  // add_fixed_fields rather than per call (issue 16). Unset when a provider header shares a
  // name with a per-call field (x-request-id, traceparent, tracestate), which only the call
  // can resolve: such a provider's calls list every header in Request::headers.
  std::optional<std::string> fixed_fields;
};
Result<Endpoint> parse_base_url(std::string_view base_url);
// Fills endpoint.fixed_fields for `provider` (see above). The text holds the provider's key.
void add_fixed_fields(Endpoint& endpoint, const config::ProviderConfig& provider);

// A prepared chat-completions call for one provider and model. `provider` and `endpoint`
// are borrowed: they must outlive every call that uses the request.
struct Request {
  const config::ProviderConfig* provider = nullptr;
  const Endpoint* endpoint = nullptr;
  boost::beast::http::verb method = boost::beast::http::verb::post;
  std::string target;  // path and query, e.g. /v1/chat/completions
  // Every header, in order (a later one of a name replaces an earlier one when sent); only
  // the per-call ones (x-request-id, trace context) when endpoint->fixed_fields is set.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Zero means "no limit" for each of these.
  std::chrono::steady_clock::duration timeout{};  // whole attempt, connect included
  std::chrono::steady_clock::duration connect_timeout{};  // resolve + TCP + TLS handshake
  std::chrono::steady_clock::duration first_byte_timeout{};  // request written -> response head
  // The most body bytes one response may have, whatever its framing (Content-Length,
  // chunked, or streamed until the connection closes).
  std::uint64_t max_response_bytes = 64ull << 20;
  // send(): bytes reserved past a declared Content-Length, so that the caller can append
  // that much to the body without a reallocation that copies it whole (the gateway adds
  // cost_usd and latency_ms to a buffered answer; issue 16).
  std::size_t response_room = 0;
};

// Builds the target and headers for a chat call: OpenAI-style `{base}/chat/completions`
// with `Authorization: Bearer`, or Azure's
// `{base}/openai/deployments/{deployment}/chat/completions?api-version=...` with `api-key`.
Request make_chat_request(const config::ProviderConfig& provider, const Endpoint& endpoint,
                          std::string_view upstream_model, std::string body,
                          std::string_view request_id);

// The same for any per-model operation ("/chat/completions", "/embeddings"): `{base}{operation}`,
// or on Azure `{base}/openai/deployments/{deployment}{operation}?api-version=...`.
Request make_provider_request(const config::ProviderConfig& provider, const Endpoint& endpoint,
                              std::string_view operation, std::string_view upstream_model, std::string body,
                              std::string_view request_id);

struct Response {
  unsigned status = 0;
  std::string content_type;
  std::optional<std::string> retry_after;  // raw Retry-After header value
  std::string body;
};

// A response whose body is consumed piece by piece as it arrives (SSE relaying).
//
// Ownership: the stream owns its connection exclusively until the body has been read to
// the end; only then (and only if the response allows keep-alive) does the connection go
// back to the Client's pool. cancel(), a failure, or destroying an unfinished stream closes
// the connection instead. A stream may outlive its Client (the connection is then simply
// closed). It is not thread-safe: use it on the Client's executor. cancel() may be called
// while next() is suspended (e.g. from another coroutine when the downstream client goes
// away); that next() then completes with a `reset` failure saying "cancelled". Do not
// destroy the stream while a next() is suspended.
class ResponseStream {
 public:
  ResponseStream(ResponseStream&&) noexcept;
  ResponseStream& operator=(ResponseStream&&) noexcept;
  ~ResponseStream();

  unsigned status() const;
  const std::string& content_type() const;
  const std::optional<std::string>& retry_after() const;

  // The next body bytes (chunked transfer coding removed), nullopt once the body is
  // complete. The view stays valid until the next call. The whole response must complete
  // within the request's timeout, and progress (see note_progress) must come within the
  // idle timeout given to open_stream, however many bytes keep arriving: otherwise the
  // result is a `timeout` failure. A body longer than the request's max_response_bytes is
  // a `too_large` failure.
  boost::asio::awaitable<Result<std::optional<std::string_view>, Failure>> next();

  // Restarts the idle timeout: the caller got something worth waiting for (a complete
  // event). Bytes alone do not count, so an upstream trickling one endless event still
  // times out. Until the first call the idle timeout runs from the response head.
  void note_progress();

  // The rest of the body as one string (for error bodies), at most max_response_bytes.
  boost::asio::awaitable<Result<std::string, Failure>> read_rest();

  // Closes the connection now; pending and later reads fail.
  void cancel();

 private:
  friend class Client;
  struct State;
  explicit ResponseStream(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

struct ProxyConfig;  // upstream/proxy.hpp

class Client {
 public:
  // `proxy`: HTTPS upstreams it applies to are reached through its CONNECT tunnel.
  Client(boost::asio::any_io_executor executor, std::shared_ptr<boost::asio::ssl::context> tls,
         std::shared_ptr<const ProxyConfig> proxy = nullptr);
  ~Client();  // closes pooled connections; must not run while a send() is suspended
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // One attempt: sends the request and reads the whole response (bounded by the
  // request's timeouts). Reuses a pooled keep-alive connection when one is idle.
  boost::asio::awaitable<Result<Response, Failure>> send(const Request& request);

  // One attempt whose body is read incrementally: completes once the response head has
  // arrived (connect, first-byte and total timeouts as for send). `idle_timeout` bounds
  // each wait for more body bytes (zero: no idle limit).
  boost::asio::awaitable<Result<ResponseStream, Failure>> open_stream(
      const Request& request, std::chrono::steady_clock::duration idle_timeout);

  // Closes idle pooled connections (shutdown).
  void close_idle();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A TLS context that verifies peers against the system certificate store.
std::shared_ptr<boost::asio::ssl::context> make_client_tls_context();

}  // namespace turnout::upstream
