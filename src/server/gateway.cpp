#include "server/gateway.hpp"

#include "server/access_log.hpp"
#include "server/openai_error.hpp"
#include "server/route_table.hpp"
#include "upstream/proxy.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace turnout::server {
namespace asio = boost::asio;

namespace {

bool valid_client_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.' || c == ':';
  });
}

std::string generate_request_id(std::mt19937_64& rng) {
  return fmt::format("req_{:016x}{:08x}", rng(), static_cast<std::uint32_t>(rng()));
}

HttpResponse method_not_allowed(const Exchange& ex, const RouteEntry& entry, unsigned version) {
  const std::string_view allowed = http::to_string(entry.method);
  HttpResponse r = error_response(
      ApiError{405, fmt::format("Method {} is not allowed on {}; use {}.", ex.method, ex.path, allowed),
               "invalid_request_error", "", "method_not_allowed"},
      version);
  r.set(http::field::allow, allowed);
  return r;
}

}  // namespace

Gateway::Gateway(const config::Config& config, ledger::Ledger& ledger, GatewayOptions options)
    : services_(config, ledger, std::move(options)),
      client_keys_(config.server.api_keys, ledger.installation_secret()) {}

Gateway::~Gateway() {
  if (services_.blocking_pool) services_.blocking_pool->join();
}

Result<std::unique_ptr<Gateway>> Gateway::create(const config::Config& config, ledger::Ledger& ledger,
                                                 std::vector<asio::any_io_executor> executors, GatewayOptions options) {
  std::unique_ptr<Gateway> gw(new Gateway(config, ledger, std::move(options)));
  for (const auto& [name, provider] : config.providers) {
    auto endpoint = upstream::parse_base_url(provider.base_url);
    if (!endpoint) return make_error("providers." + name + ".base_url: " + endpoint.error().message);
    gw->services_.upstream_endpoints.emplace(name, std::move(*endpoint));
  }
  auto proxy = upstream::proxy_from_environment(config::process_env());
  if (!proxy) return proxy.error();
  std::shared_ptr<const upstream::ProxyConfig> shared_proxy;
  if (*proxy) shared_proxy = std::make_shared<const upstream::ProxyConfig>(std::move(**proxy));
  auto tls = upstream::make_client_tls_context();
  for (auto& ex : executors) gw->workers_.push_back(std::make_unique<WorkerState>(ex, tls, shared_proxy));
  gw->services_.blocking_pool = std::make_unique<asio::thread_pool>(2);
  return gw;
}

listener::RejectionResponses Gateway::rejections() {
  listener::RejectionResponses r;
  r.body_too_large = [this](unsigned version, std::uint64_t limit) {
    services_.metrics.record_rejection("body_too_large", 413);
    return error_response(ApiError{413,
                                   fmt::format("Request body too large: the limit is {} bytes (server.max_body_bytes).", limit),
                                   "invalid_request_error", "", "request_too_large"},
                          version);
  };
  r.bad_request = [this](unsigned version, const std::string& why) {
    services_.metrics.record_rejection("malformed_http", 400);
    return error_response(ApiError{400, why, "invalid_request_error", "", "malformed_request"}, version);
  };
  r.unsupported_transfer_coding = [this](unsigned version, const std::string& coding) {
    services_.metrics.record_rejection("unsupported_transfer_coding", 501);
    return error_response(ApiError{501,
                                   fmt::format("Transfer-Encoding '{}' is not supported: send the body plain "
                                               "(Content-Length) or with 'Transfer-Encoding: chunked' alone.",
                                               std::string_view(coding).substr(0, 64)),
                                   "invalid_request_error", "", "unsupported_transfer_encoding"},
                          version);
  };
  return r;
}

void Gateway::close_idle_connections() {
  for (auto& worker : workers_) worker->client.close_idle();
}

asio::awaitable<std::optional<HttpResponse>> Gateway::handle(HttpRequest& request, Connection& connection) {
  Exchange ex;
  WorkerState& worker = *workers_[connection.worker_index];
  const std::string_view client_id = request["x-request-id"];
  ex.request_id = valid_client_request_id(client_id) ? std::string(client_id) : generate_request_id(worker.rng);
  const std::string_view target = request.target();
  ex.path = target.substr(0, target.find('?'));
  ex.method = request.method_string();
  const unsigned version = request.version();

  HttpResponse res;
  const RouteEntry* entry = find_route(ex.path, request.method());
  std::optional<std::string> key_id;
  if (entry == nullptr) {
    services_.metrics.record_rejection("unknown_url", 404);
    res = error_response(ApiError{404, fmt::format("Unknown request URL: {} {}.", ex.method, ex.path),
                                  "invalid_request_error", "", "unknown_url"},
                         version);
  } else if (entry->access == Access::client_key && !(key_id = client_keys_.authenticate(request))) {
    services_.metrics.record_rejection("unauthorized", 401);
    res = error_response(ApiError{401,
                                  "Incorrect or missing API key. Send a gateway key as 'Authorization: Bearer <key>'.",
                                  "invalid_request_error", "", "invalid_api_key"},
                         version);
    res.set(http::field::www_authenticate, "Bearer");
  } else if (request.method() != entry->method) {
    res = method_not_allowed(ex, *entry, version);
  } else {
    // An open endpoint tells a caller without a valid key less (/health).
    if (entry->access == Access::open) key_id = client_keys_.authenticate(request);
    ex.authenticated = key_id.has_value();
    if (key_id) ex.key_id = std::move(*key_id);
    Call call{request, connection, ex, worker};
    auto answered = co_await entry->handler(services_, call);
    if (!answered) {
      log_access(services_.options, ex, ex.stream_status);  // streamed: the response is already written
      co_return std::nullopt;
    }
    res = std::move(*answered);
  }
  res.set("x-request-id", ex.request_id);
  log_access(services_.options, ex, res.result_int());
  co_return res;
}

}  // namespace turnout::server
