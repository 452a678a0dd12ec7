// GET/DELETE /v1/responses/{id}, POST /v1/responses/{id}/cancel, GET
// /v1/responses/{id}/input_items (docs/REFERENCE.md §2.16): passed to the default
// provider. A response id does not say which provider made it and the gateway keeps no
// map of ids, so every stored-response call goes to the provider that continuations are
// routed to (responses_plan.hpp): the two agree by construction. Nothing is billed, so
// nothing is recorded in the ledger.
#include "server/endpoints/endpoint.hpp"
#include "server/openai_error.hpp"
#include "server/upstream_errors.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace turnout::server::endpoints {
namespace asio = boost::asio;

namespace {

constexpr std::string_view kPrefix = "/v1/responses/";

bool is_response_id(std::string_view id) {
  return !id.empty() && id.size() <= 256 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
         });
}

// Whether `rest` (the path after /v1/responses/) is an operation on a stored response
// that `method` can call.
bool is_stored_response_call(std::string_view rest, http::verb method) {
  const auto slash = rest.find('/');
  const std::string_view id = rest.substr(0, slash);
  if (!is_response_id(id)) return false;
  if (slash == std::string_view::npos) return method == http::verb::get || method == http::verb::delete_;
  const std::string_view action = rest.substr(slash + 1);
  return (action == "cancel" && method == http::verb::post) || (action == "input_items" && method == http::verb::get);
}

}  // namespace

asio::awaitable<std::optional<HttpResponse>> responses_stored(Services& services, Call& call) {
  const unsigned version = call.request.version();
  const std::string_view target = call.request.target();
  const std::string_view path = call.exchange.path;
  const std::string_view rest = path.substr(kPrefix.size());
  if (!is_stored_response_call(rest, call.request.method())) {
    services.metrics.record_rejection("unknown_url", 404);
    co_return error_response(ApiError{404, fmt::format("Unknown request URL: {} {}.", call.exchange.method, path),
                                      "invalid_request_error", "", "unknown_url"},
                             version);
  }
  const config::ProviderConfig* provider = call.settings.config.default_provider();
  const auto endpoint = provider ? call.settings.upstream_endpoints.find(provider->name) : call.settings.upstream_endpoints.end();
  if (provider == nullptr || endpoint == call.settings.upstream_endpoints.end()) {
    co_return error_response(ApiError{500, "No provider is configured to hold stored responses.", "server_error", "",
                                      "no_provider"},
                             version);
  }
  // The path after /v1 and the query go to the provider as sent.
  const std::string operation(target.substr(std::string_view("/v1").size()));
  auto request = upstream::make_provider_request(*provider, endpoint->second, operation, "", "",
                                                 call.exchange.request_id);
  request.method = call.request.method();
  ++call.exchange.attempts;
  const auto sent = Clock::now();
  auto result = co_await call.worker.client.send(request);
  call.exchange.upstream += Clock::now() - sent;
  if (!result) {
    const ApiError failure = failure_error(std::optional<upstream::Failure>(std::move(result.error())));
    call.exchange.error_type = failure.code;
    co_return error_response(failure, version);
  }
  upstream::Response& response = result.value();
  if (response.status >= 400) {
    // As for any upstream error: credentials scrubbed, and a refusal of the gateway's own
    // provider key is not passed off as the client's.
    call.exchange.error_type = upstream_error_type(response.status);
    co_return upstream_error_response(call.worker.response_parser, response, version, provider->name,
                                      provider->api_key);
  }
  HttpResponse res{static_cast<http::status>(response.status), version};
  res.set(http::field::content_type, response.content_type.empty() ? "application/json" : response.content_type);
  res.body() = std::move(response.body);
  co_return res;
}

}  // namespace turnout::server::endpoints
