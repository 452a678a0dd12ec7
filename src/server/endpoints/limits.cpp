// GET /v1/limits (docs/REFERENCE.md §8.5): a virtual key asks about itself — its limits,
// its usage in the current period and, for a key in a team, the team's. Read on the
// blocking pool, never with the secret.
#include "governance/record_json.hpp"
#include "server/endpoints/blocking.hpp"
#include "server/endpoints/endpoint.hpp"
#include "server/openai_error.hpp"

namespace turnout::server::endpoints {
namespace asio = boost::asio;

asio::awaitable<std::optional<HttpResponse>> limits(Services& services, Call& call) {
  const unsigned version = call.request.version();
  if (!call.exchange.grant || services.options.governance_store == nullptr) {
    services.metrics.record_rejection("invalid_api_key", 401);
    HttpResponse res = error_response(
        ApiError{401, "GET /v1/limits answers a virtual key about itself: send 'Authorization: Bearer tk-...'.",
                 "invalid_request_error", "", "invalid_api_key"},
        version);
    res.set(http::field::www_authenticate, "Bearer");
    co_return res;
  }
  const admit::KeyGrant* grant = call.exchange.grant.get();  // held by the exchange throughout
  governance::GovernanceStore* store = services.options.governance_store;
  // Trivial captures only: GCC 12 destroys the non-trivial captures of a lambda handed
  // through on_blocking_pool's co_await twice.
  auto read = [grant, store]() -> governance::StoreResult<std::string> {
    const std::int64_t now = admit::system_now_ms();
    auto usage = store->usage(governance::key_scope(grant->key.id), grant->key.limits, now);
    if (!usage) return usage.error();
    std::string out = governance::key_json(grant->key, &*usage);
    if (grant->team) {
      auto team_usage = store->usage(governance::team_scope(grant->team->id), grant->team->limits, now);
      if (!team_usage) return team_usage.error();
      out.pop_back();  // the closing brace: the team goes inside the key's object
      out += R"(,"team_limits":)" + governance::team_json(*grant->team, &*team_usage) + "}";
    }
    return out;
  };
  auto body = co_await on_blocking_pool<governance::StoreResult<std::string>>(services, std::move(read));
  if (!body)
    co_return error_response(ApiError{503, "The key's usage cannot be read right now (the ledger database is unreachable).",
                                      "server_error", "", "governance_unavailable"},
                             version);
  co_return json_response(http::status::ok, version, std::move(*body));
}

}  // namespace turnout::server::endpoints
