#pragma once
// The upstream HTTP client: HTTP/1.1 over TCP or TLS (certificate verification against
// the system store, SNI), keep-alive connection pool, per-attempt deadlines. One Client
// per event-loop thread (it is not thread-safe; no locks on the hot path).
#include "common/result.hpp"
#include "config/config.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

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
};

struct Failure {
  FailureKind kind;
  std::string message;  // for logs and client-facing 502/504 messages; never holds a key
};

// The provider's wire details, derived once per provider at start-up.
struct Endpoint {
  bool tls = true;
  std::string host;
  std::string port;       // "443"
  std::string base_path;  // "/v1" (no trailing slash)
};
Result<Endpoint> parse_base_url(std::string_view base_url);

// A prepared chat-completions call for one provider and model.
struct Request {
  const config::ProviderConfig* provider = nullptr;
  const Endpoint* endpoint = nullptr;
  std::string target;  // path and query, e.g. /v1/chat/completions
  std::vector<std::pair<std::string, std::string>> headers;  // auth + provider headers
  std::string body;
  std::chrono::steady_clock::duration timeout{};  // whole attempt
  std::chrono::steady_clock::duration connect_timeout{};
};

// Builds the target and headers for a chat call: OpenAI-style `{base}/chat/completions`
// with `Authorization: Bearer`, or Azure's
// `{base}/openai/deployments/{deployment}/chat/completions?api-version=...` with `api-key`.
Request make_chat_request(const config::ProviderConfig& provider, const Endpoint& endpoint,
                          std::string_view upstream_model, std::string body,
                          std::string_view request_id);

struct Response {
  unsigned status = 0;
  std::string content_type;
  std::optional<std::string> retry_after;  // raw Retry-After header value
  std::string body;
};

class Client {
 public:
  Client(boost::asio::any_io_executor executor, std::shared_ptr<boost::asio::ssl::context> tls);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // One attempt: sends the request and reads the whole response (bounded by the
  // request's timeouts). Reuses a pooled keep-alive connection when one is idle.
  boost::asio::awaitable<Result<Response, Failure>> send(const Request& request);

  // Closes idle pooled connections (shutdown).
  void close_idle();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A TLS context that verifies peers against the system certificate store.
std::shared_ptr<boost::asio::ssl::context> make_client_tls_context();

}  // namespace turnout::upstream
