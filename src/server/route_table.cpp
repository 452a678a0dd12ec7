#include "server/route_table.hpp"

#include <array>

namespace turnout::server {
namespace {

constexpr std::array kRoutes{
    RouteEntry{"/v1/chat/completions", http::verb::post, Access::client_key, &endpoints::chat_completions},
    RouteEntry{"/chat/completions", http::verb::post, Access::client_key, &endpoints::chat_completions},
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
};

}  // namespace

std::span<const RouteEntry> route_table() { return kRoutes; }

const RouteEntry* find_route(std::string_view path) {
  for (const RouteEntry& entry : kRoutes)
    if (entry.path == path) return &entry;
  return nullptr;
}

}  // namespace turnout::server
