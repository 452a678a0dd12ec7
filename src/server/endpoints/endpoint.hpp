#pragma once
// One file per endpoint, one handler signature: a handler gets the gateway's services and
// the call, and returns the response to send, or nullopt when it wrote the response itself
// (server-sent events). The route table (server/route_table.cpp) maps paths to handlers.
#include "server/services.hpp"

#include <boost/asio/awaitable.hpp>

#include <optional>

namespace turnout::server::endpoints {

using Handler = boost::asio::awaitable<std::optional<HttpResponse>> (*)(Services&, Call&);

boost::asio::awaitable<std::optional<HttpResponse>> chat_completions(Services&, Call&);  // chat.cpp
boost::asio::awaitable<std::optional<HttpResponse>> embeddings(Services&, Call&);        // embeddings.cpp
boost::asio::awaitable<std::optional<HttpResponse>> responses(Services&, Call&);         // responses.cpp
boost::asio::awaitable<std::optional<HttpResponse>> responses_input_tokens(Services&, Call&);  // responses.cpp
boost::asio::awaitable<std::optional<HttpResponse>> responses_stored(Services&, Call&);  // responses_stored.cpp
boost::asio::awaitable<std::optional<HttpResponse>> route(Services&, Call&);             // route.cpp
boost::asio::awaitable<std::optional<HttpResponse>> stats(Services&, Call&);             // stats.cpp
boost::asio::awaitable<std::optional<HttpResponse>> stats_series(Services&, Call&);      // stats_series.cpp
boost::asio::awaitable<std::optional<HttpResponse>> dashboard(Services&, Call&);         // dashboard.cpp
boost::asio::awaitable<std::optional<HttpResponse>> root(Services&, Call&);              // root.cpp
boost::asio::awaitable<std::optional<HttpResponse>> health(Services&, Call&);            // health.cpp
boost::asio::awaitable<std::optional<HttpResponse>> livez(Services&, Call&);             // livez.cpp
boost::asio::awaitable<std::optional<HttpResponse>> models(Services&, Call&);            // models.cpp
boost::asio::awaitable<std::optional<HttpResponse>> metrics(Services&, Call&);           // metrics.cpp
boost::asio::awaitable<std::optional<HttpResponse>> limits(Services&, Call&);            // limits.cpp
// admin_reload.cpp: POST /admin/v1/reload
boost::asio::awaitable<std::optional<HttpResponse>> admin_reload(Services&, Call&);
// admin_keys.cpp: /admin/v1/keys[/{id}[/revoke|/rotate]]
boost::asio::awaitable<std::optional<HttpResponse>> admin_create_key(Services&, Call&);
boost::asio::awaitable<std::optional<HttpResponse>> admin_list_keys(Services&, Call&);
boost::asio::awaitable<std::optional<HttpResponse>> admin_show_key(Services&, Call&);
boost::asio::awaitable<std::optional<HttpResponse>> admin_update_key(Services&, Call&);
boost::asio::awaitable<std::optional<HttpResponse>> admin_revoke_key(Services&, Call&);
boost::asio::awaitable<std::optional<HttpResponse>> admin_rotate_key(Services&, Call&);
// admin_teams.cpp: /admin/v1/teams[/{id}]
boost::asio::awaitable<std::optional<HttpResponse>> admin_create_team(Services&, Call&);
boost::asio::awaitable<std::optional<HttpResponse>> admin_list_teams(Services&, Call&);
boost::asio::awaitable<std::optional<HttpResponse>> admin_show_team(Services&, Call&);
boost::asio::awaitable<std::optional<HttpResponse>> admin_update_team(Services&, Call&);

}  // namespace turnout::server::endpoints
