// /admin/v1/keys (docs/REFERENCE.md "Admin API"): create (201, the whole key shown once),
// list, show with usage, update, revoke, rotate (the new whole key shown once). The same
// operations as `turnout keys`, audited with the actor "admin".
#include "server/endpoints/admin_support.hpp"
#include "server/endpoints/endpoint.hpp"

namespace turnout::server::endpoints {
namespace asio = boost::asio;
namespace gov = governance;

namespace {

// A changed key leaves this replica's cache at once (others see it within the cache TTL),
// so a revocation or rotation through this gateway holds from its very next request.
std::optional<HttpResponse> forgetting(Services& services, const std::string& key_id, std::optional<HttpResponse> res) {
  if (res && res->result() == http::status::ok && services.options.admission != nullptr)
    services.options.admission->forget(key_id);
  return res;
}

}  // namespace

asio::awaitable<std::optional<HttpResponse>> admin_create_key(Services& services, Call& call) {
  gov::Fields fields;
  if (auto bad = read_admin_fields(call, gov::FieldsFor::key, false, fields)) co_return std::move(*bad);
  const gov::Fields* given = &fields;
  co_return co_await run_admin(services, call, http::status::created,
                               [given](gov::GovernanceStore& store, std::int64_t now) {
                                 return gov::create_key(store, *given, std::string(kAdminActor), now);
                               });
}

asio::awaitable<std::optional<HttpResponse>> admin_list_keys(Services& services, Call& call) {
  co_return co_await run_admin(services, call, http::status::ok,
                               [](gov::GovernanceStore& store, std::int64_t) { return gov::list_keys(store); });
}

asio::awaitable<std::optional<HttpResponse>> admin_show_key(Services& services, Call& call) {
  const std::string id(call.path_id);
  const std::string* key_id = &id;
  co_return co_await run_admin(services, call, http::status::ok, [key_id](gov::GovernanceStore& store, std::int64_t now) {
    return gov::show_key(store, *key_id, now);
  });
}

asio::awaitable<std::optional<HttpResponse>> admin_update_key(Services& services, Call& call) {
  gov::Fields fields;
  if (auto bad = read_admin_fields(call, gov::FieldsFor::key, true, fields)) co_return std::move(*bad);
  const std::string id(call.path_id);
  const std::string* key_id = &id;
  const gov::Fields* given = &fields;
  auto res = co_await run_admin(services, call, http::status::ok,
                               [key_id, given](gov::GovernanceStore& store, std::int64_t now) {
                                 return gov::update_key(store, *key_id, *given, std::string(kAdminActor), now);
                               });
  co_return forgetting(services, id, std::move(res));
}

asio::awaitable<std::optional<HttpResponse>> admin_revoke_key(Services& services, Call& call) {
  const std::string id(call.path_id);
  const std::string* key_id = &id;
  auto res = co_await run_admin(services, call, http::status::ok, [key_id](gov::GovernanceStore& store, std::int64_t now) {
    return gov::revoke_key(store, *key_id, std::string(kAdminActor), now);
  });
  co_return forgetting(services, id, std::move(res));
}

asio::awaitable<std::optional<HttpResponse>> admin_rotate_key(Services& services, Call& call) {
  const std::string id(call.path_id);
  const std::string* key_id = &id;
  auto res = co_await run_admin(services, call, http::status::ok, [key_id](gov::GovernanceStore& store, std::int64_t now) {
    return gov::rotate_key(store, *key_id, std::string(kAdminActor), now);
  });
  co_return forgetting(services, id, std::move(res));
}

}  // namespace turnout::server::endpoints
