#include "server/route_table.hpp"

#include <array>

namespace turnout::server {
namespace {

constexpr std::array kRoutes{
    RouteEntry{"/v1/chat/completions", http::verb::post, Access::client_key, &endpoints::chat_completions},
    RouteEntry{"/chat/completions", http::verb::post, Access::client_key, &endpoints::chat_completions},
    RouteEntry{"/v1/embeddings", http::verb::post, Access::client_key, &endpoints::embeddings},
    RouteEntry{"/v1/responses", http::verb::post, Access::client_key, &endpoints::responses},
    RouteEntry{"/v1/responses/input_tokens", http::verb::post, Access::client_key, &endpoints::responses_input_tokens},
    RouteEntry{"/v1/models", http::verb::get, Access::client_key, &endpoints::models},
    RouteEntry{"/v1/limits", http::verb::get, Access::client_key, &endpoints::limits},
    RouteEntry{"/route", http::verb::post, Access::client_key, &endpoints::route},
    RouteEntry{"/stats", http::verb::get, Access::client_key, &endpoints::stats},
    RouteEntry{"/stats/series", http::verb::get, Access::client_key, &endpoints::stats_series},
    RouteEntry{"/metrics", http::verb::get, Access::client_key, &endpoints::metrics},
    RouteEntry{"/health", http::verb::get, Access::open, &endpoints::health},
    RouteEntry{"/livez", http::verb::get, Access::open, &endpoints::livez},
    // The page and its files hold no data; what they fetch needs a key like the rest.
    RouteEntry{"/dashboard", http::verb::get, Access::open, &endpoints::dashboard},
    RouteEntry{"/dashboard/dashboard.css", http::verb::get, Access::open, &endpoints::dashboard},
    RouteEntry{"/dashboard/dashboard.js", http::verb::get, Access::open, &endpoints::dashboard},
    RouteEntry{"/dashboard/chart.min.js", http::verb::get, Access::open, &endpoints::dashboard},
    RouteEntry{"/", http::verb::get, Access::open, &endpoints::root},
    // Stored responses: /v1/responses/{id}, .../cancel, .../input_items (responses_stored.cpp).
    RouteEntry{"/v1/responses/", http::verb::get, Access::client_key, &endpoints::responses_stored, Match::prefix},
    RouteEntry{"/v1/responses/", http::verb::delete_, Access::client_key, &endpoints::responses_stored, Match::prefix},
    RouteEntry{"/v1/responses/", http::verb::post, Access::client_key, &endpoints::responses_stored, Match::prefix},
    RouteEntry{"/admin/v1/keys", http::verb::post, Access::admin, &endpoints::admin_create_key},
    RouteEntry{"/admin/v1/keys", http::verb::get, Access::admin, &endpoints::admin_list_keys},
    RouteEntry{"/admin/v1/keys/{id}", http::verb::get, Access::admin, &endpoints::admin_show_key},
    RouteEntry{"/admin/v1/keys/{id}", http::verb::patch, Access::admin, &endpoints::admin_update_key},
    RouteEntry{"/admin/v1/keys/{id}/revoke", http::verb::post, Access::admin, &endpoints::admin_revoke_key},
    RouteEntry{"/admin/v1/keys/{id}/rotate", http::verb::post, Access::admin, &endpoints::admin_rotate_key},
    RouteEntry{"/admin/v1/teams", http::verb::post, Access::admin, &endpoints::admin_create_team},
    RouteEntry{"/admin/v1/teams", http::verb::get, Access::admin, &endpoints::admin_list_teams},
    RouteEntry{"/admin/v1/teams/{id}", http::verb::get, Access::admin, &endpoints::admin_show_team},
    RouteEntry{"/admin/v1/teams/{id}", http::verb::patch, Access::admin, &endpoints::admin_update_team},
    RouteEntry{"/admin/v1/reload", http::verb::post, Access::admin, &endpoints::admin_reload},
};

// Whether `path` fits the exact `pattern`; a "{id}" segment takes one non-empty segment into `id`.
bool exact_matches(std::string_view pattern, std::string_view path, std::string_view& id) {
  constexpr std::string_view kParam = "{id}";
  const std::size_t at = pattern.find(kParam);
  if (at == std::string_view::npos) return pattern == path;
  const std::string_view before = pattern.substr(0, at);
  const std::string_view after = pattern.substr(at + kParam.size());
  if (path.size() <= before.size() + after.size() || !path.starts_with(before) || !path.ends_with(after)) return false;
  const std::string_view segment = path.substr(before.size(), path.size() - before.size() - after.size());
  if (segment.find('/') != std::string_view::npos) return false;
  id = segment;
  return true;
}

}  // namespace

std::span<const RouteEntry> route_table() { return kRoutes; }

RouteMatch find_route(std::string_view path, http::verb method) {
  for (const Match kind : {Match::exact, Match::prefix}) {
    RouteMatch match;
    for (const RouteEntry& entry : kRoutes) {
      if (entry.match != kind) continue;
      std::string_view id;
      const bool matches = kind == Match::exact ? exact_matches(entry.path, path, id)
                                                : path.size() > entry.path.size() && path.starts_with(entry.path);
      if (!matches) continue;
      if (!match.allowed_methods.empty()) match.allowed_methods += ", ";
      match.allowed_methods += http::to_string(entry.method);
      if (match.method_allowed) continue;
      if (entry.method == method || match.entry == nullptr) {
        match.entry = &entry;
        match.path_id = id;
        match.method_allowed = entry.method == method;
      }
    }
    if (match.entry != nullptr) return match;
  }
  return {};
}

}  // namespace turnout::server
