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
};

}  // namespace

std::span<const RouteEntry> route_table() { return kRoutes; }

const RouteEntry* find_route(std::string_view path, http::verb method) {
  for (const Match match : {Match::exact, Match::prefix}) {
    const RouteEntry* first = nullptr;
    for (const RouteEntry& entry : kRoutes) {
      if (entry.match != match) continue;
      const bool matches = match == Match::exact ? entry.path == path
                                                 : path.size() > entry.path.size() && path.starts_with(entry.path);
      if (!matches) continue;
      if (entry.method == method) return &entry;
      if (first == nullptr) first = &entry;
    }
    if (first != nullptr) return first;
  }
  return nullptr;
}

}  // namespace turnout::server
