#include "server/gateway.hpp"

#include "common/clock.hpp"
#include "common/header_text.hpp"
#include "common/json_text.hpp"
#include "governance/virtual_key.hpp"
#include "server/access_log.hpp"
#include "server/admit_call.hpp"
#include "server/reload.hpp"
#include "server/endpoints/blocking.hpp"
#include "server/openai_error.hpp"
#include "server/route_table.hpp"
#include "upstream/proxy.hpp"

#include <fmt/format.h>
#include <spdlog/logger.h>

#include <algorithm>
#include <chrono>

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

// 12 hex digits of unix milliseconds, then 12 random: ids the gateway makes sort by time,
// so the ledger's index on `id` takes each new one at its right edge instead of dirtying
// a random page of it per call (issue 16: that page was most of a batch's WAL writes).
std::string generate_request_id(std::mt19937_64& rng) {
  const auto unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  return fmt::format("req_{:012x}{:012x}", static_cast<std::uint64_t>(unix_ms) & 0xffff'ffff'ffffULL,
                     rng() & 0xffff'ffff'ffffULL);
}

HttpResponse method_not_allowed(const Exchange& ex, const std::string& allowed, unsigned version) {
  HttpResponse r = error_response(
      ApiError{405, fmt::format("Method {} is not allowed on {}; use {}.", ex.method, ex.path, allowed),
               "invalid_request_error", "", "method_not_allowed"},
      version);
  r.set(http::field::allow, allowed);
  return r;
}

// The token of "Authorization: Bearer <token>", "" without one.
std::string_view bearer_token(const HttpRequest& request) {
  const std::string_view auth = request[http::field::authorization];
  constexpr std::string_view bearer = "Bearer ";
  if (auth.size() <= bearer.size() || !boost::beast::iequals(auth.substr(0, bearer.size()), bearer)) return {};
  return auth.substr(bearer.size());
}

// Virtual keys open the OpenAI-compatible API (SPEC §8); /stats, /metrics and /route stay
// with the gateway's own keys. Only a well-formed virtual key goes to governance: a static
// server.api_keys entry that merely starts with "tk-" keeps working.
bool accepts_virtual_keys(std::string_view path) { return path.starts_with("/v1/") || path == "/chat/completions"; }

}  // namespace

asio::awaitable<admit::Authenticated> Gateway::authenticate_virtual_key(std::string_view token) {
  admit::Admission* admission = services_.options.admission;
  if (auto cached = admission->authenticate(token, true)) co_return std::move(*cached);
  // The work captures only references to this frame: GCC 12 destroys the non-trivial
  // captures of a lambda handed through on_blocking_pool's co_await twice.
  const std::string owned(token);
  auto lookup = [admission, &owned] { return *admission->authenticate(owned, false); };
  co_return co_await endpoints::on_blocking_pool<admit::Authenticated>(services_, std::move(lookup));
}

Gateway::Gateway(std::shared_ptr<const ConfigSnapshot> initial, ledger::Ledger& ledger, GatewayOptions options)
    : services_(initial, ledger, std::move(options)),
      admin_key_sha256_(initial->config.governance.admin_key.empty()
                            ? std::string()
                            : governance::sha256_hex(initial->config.governance.admin_key)) {}

std::optional<HttpResponse> Gateway::refuse_admin(std::string_view token, unsigned version) {
  if (admin_key_sha256_.empty()) {
    services_.metrics.record_rejection("admin_api_disabled", 404);
    return error_response(ApiError{404, "The admin API is off: set governance.admin_key (e.g. TURNOUT_ADMIN_KEY) to turn it on.",
                                   "invalid_request_error", "", "admin_api_disabled"},
                          version);
  }
  // Hashes compared in constant time: neither the key's bytes nor its length leak; a
  // virtual or client key is simply not the admin key.
  if (!token.empty() && governance::secret_matches(token, admin_key_sha256_)) return std::nullopt;
  services_.metrics.record_rejection("unauthorized", 401);
  HttpResponse res = error_response(
      ApiError{401, "The admin API takes the admin credential as 'Authorization: Bearer <governance.admin_key>'; "
                    "client and virtual keys are not accepted here.",
               "invalid_request_error", "", "invalid_api_key"},
      version);
  res.set(http::field::www_authenticate, "Bearer");
  return res;
}

Gateway::~Gateway() {
  if (services_.blocking_pool) services_.blocking_pool->join();
}

Result<std::unique_ptr<Gateway>> Gateway::create(config::Config config, ledger::Ledger& ledger,
                                                 std::vector<asio::any_io_executor> executors, GatewayOptions options) {
  auto snapshot = build_snapshot(std::move(config), ledger.installation_secret(), nullptr);
  if (!snapshot) return snapshot.error();
  const std::shared_ptr<const ConfigSnapshot> initial = std::move(*snapshot);
  std::unique_ptr<Gateway> gw(new Gateway(initial, ledger, std::move(options)));
  const config::TelemetryConfig& telemetry = initial->config.telemetry;
  if (!telemetry.otlp_endpoint.empty()) {
    tracing::ExporterOptions exporter;
    exporter.endpoint = telemetry.otlp_endpoint;
    exporter.resource = {telemetry.service_name, gw->services_.options.instance_id, TURNOUT_VERSION_STRING};
    auto tracer = tracing::Exporter::start(std::move(exporter));
    if (!tracer) return tracer.error();
    gw->services_.tracer = std::move(*tracer);
    gw->services_.trace_sample_ratio = telemetry.sample_ratio;
  }
  auto proxy = upstream::proxy_from_environment(config::process_env());
  if (!proxy) return proxy.error();
  std::shared_ptr<const upstream::ProxyConfig> shared_proxy;
  if (*proxy) shared_proxy = std::make_shared<const upstream::ProxyConfig>(std::move(**proxy));
  auto tls = upstream::make_client_tls_context();
  for (auto& ex : executors) gw->workers_.push_back(std::make_unique<WorkerState>(ex, tls, shared_proxy, ledger));
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

void Gateway::hand_over_held_records() {
  for (auto& worker : workers_) worker->ledger_outbox.hand_over_held();
}

void Gateway::close_idle_connections() {
  for (auto& worker : workers_) worker->client.close_idle();
}

void Gateway::reload(Result<config::Config> loaded) { apply_reload(services_, std::move(loaded)); }

asio::awaitable<std::optional<HttpResponse>> Gateway::handle(HttpRequest& request, Connection& connection) {
  Exchange ex;
  WorkerState& worker = *workers_[connection.worker_index];
  // The call's config for its whole life, however many reloads happen meanwhile.
  const std::shared_ptr<const ConfigSnapshot> settings = worker.settings.current(services_.settings);
  const ClientKeys& client_keys = settings->client_keys;
  const std::string_view client_id = request["x-request-id"];
  ex.request_id = valid_client_request_id(client_id) ? std::string(client_id) : generate_request_id(worker.rng);
  const std::string_view target = request.target();
  ex.path = target.substr(0, target.find('?'));
  ex.method = request.method_string();
  const unsigned version = request.version();

  HttpResponse res;
  const RouteMatch route = find_route(ex.path, request.method());
  const RouteEntry* entry = route.entry;
  std::optional<std::string> key_id;
  std::optional<admit::Refusal> key_refused;
  const std::string_view token = bearer_token(request);
  const bool virtual_key = entry != nullptr && entry->access == Access::client_key && services_.options.admission &&
                           accepts_virtual_keys(ex.path) && governance::parse_virtual_key(token).has_value();
  if (virtual_key) {
    admit::Authenticated auth = co_await authenticate_virtual_key(token);
    if (auth.grant) {
      key_id = auth.grant->key.id;
      ex.grant = std::move(auth.grant);
    } else {
      key_refused = std::move(auth.refusal);
    }
  }
  if (entry == nullptr) {
    services_.metrics.record_rejection("unknown_url", 404);
    res = error_response(ApiError{404, fmt::format("Unknown request URL: {} {}.", ex.method, ex.path),
                                  "invalid_request_error", "", "unknown_url"},
                         version);
  } else if (key_refused) {
    services_.metrics.record_rejection(key_refused->code, key_refused->status);
    ex.error_type = key_refused->code;
    res = refusal_response(*key_refused, version);
  } else if (entry->access == Access::client_key && !virtual_key && !(key_id = client_keys.authenticate(request))) {
    services_.metrics.record_rejection("unauthorized", 401);
    res = error_response(ApiError{401,
                                  "Incorrect or missing API key. Send a gateway key as 'Authorization: Bearer <key>'.",
                                  "invalid_request_error", "", "invalid_api_key"},
                         version);
    res.set(http::field::www_authenticate, "Bearer");
  } else if (auto admin_refusal = entry->access == Access::admin ? refuse_admin(token, version) : std::nullopt) {
    res = std::move(*admin_refusal);
  } else if (!route.method_allowed) {
    res = method_not_allowed(ex, route.allowed_methods, version);
  } else {
    // An open endpoint tells a caller without a valid key less (/health).
    if (entry->access == Access::open) key_id = client_keys.authenticate(request);
    ex.authenticated = key_id.has_value();
    if (entry->access == Access::admin) {
      ex.authenticated = true;
      ex.key_id = "admin";
    }
    if (key_id) ex.key_id = std::move(*key_id);
    Call call{request, connection, ex, worker, *settings, route.path_id};
    auto answered = co_await entry->handler(services_, call);
    if (!answered) {
      log_access(services_.options, ex, ex.stream_status);  // streamed: the response is already written
      co_return std::nullopt;
    }
    res = std::move(*answered);
  }
  for (const auto& [name, value] : ex.limit_headers) res.set(name, value);
  append_header_line(res.raw_fields, "x-request-id", ex.request_id);
  log_access(services_.options, ex, res.result_int());
  co_return res;
}

}  // namespace turnout::server
