// /admin/v1/teams (docs/REFERENCE.md "Admin API"): create (201; the name is the team's
// id), list, show with usage, update. The same operations as `turnout teams`, audited
// with the actor "admin".
#include "server/endpoints/admin_support.hpp"
#include "server/endpoints/endpoint.hpp"

namespace turnout::server::endpoints {
namespace asio = boost::asio;
namespace gov = governance;

asio::awaitable<std::optional<HttpResponse>> admin_create_team(Services& services, Call& call) {
  gov::Fields fields;
  if (auto bad = read_admin_fields(call, gov::FieldsFor::team, false, fields)) co_return std::move(*bad);
  const gov::Fields* given = &fields;
  co_return co_await run_admin(services, call, http::status::created,
                               [given](gov::GovernanceStore& store, std::int64_t now) {
                                 return gov::create_team(store, *given, std::string(kAdminActor), now);
                               });
}

asio::awaitable<std::optional<HttpResponse>> admin_list_teams(Services& services, Call& call) {
  co_return co_await run_admin(services, call, http::status::ok,
                               [](gov::GovernanceStore& store, std::int64_t) { return gov::list_teams(store); });
}

asio::awaitable<std::optional<HttpResponse>> admin_show_team(Services& services, Call& call) {
  const std::string id(call.path_id);
  const std::string* team_id = &id;
  co_return co_await run_admin(services, call, http::status::ok,
                               [team_id](gov::GovernanceStore& store, std::int64_t now) {
                                 return gov::show_team(store, *team_id, now);
                               });
}

asio::awaitable<std::optional<HttpResponse>> admin_update_team(Services& services, Call& call) {
  gov::Fields fields;
  if (auto bad = read_admin_fields(call, gov::FieldsFor::team, true, fields)) co_return std::move(*bad);
  const std::string id(call.path_id);
  const std::string* team_id = &id;
  const gov::Fields* given = &fields;
  auto res = co_await run_admin(services, call, http::status::ok,
                                [team_id, given](gov::GovernanceStore& store, std::int64_t now) {
                                  return gov::update_team(store, *team_id, *given, std::string(kAdminActor), now);
                                });
  // The team's keys leave this replica's cache at once: its new limits hold from the next call.
  if (res && res->result() == http::status::ok && services.options.admission != nullptr)
    services.options.admission->forget_team(id);
  co_return res;
}

}  // namespace turnout::server::endpoints
