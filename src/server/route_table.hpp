#pragma once
// The one table of the gateway's endpoints: path, method, who may call it, handler.
// Adding an endpoint is one file under endpoints/ plus one line in route_table.cpp.
#include "server/endpoints/endpoint.hpp"

#include <span>
#include <string>
#include <string_view>

namespace turnout::server {

enum class Access {
  open,        // anyone (health probes)
  client_key,  // a gateway key when server.api_keys is set
  admin,       // governance.admin_key, never a client or virtual key (off when it is empty)
};

enum class Match {
  exact,   // the path itself; a "{id}" segment matches one non-empty path segment
  prefix,  // any longer path starting with it (the handler reads the rest)
};

struct RouteEntry {
  std::string_view path;
  http::verb method;
  Access access;
  endpoints::Handler handler;
  Match match = Match::exact;
};

std::span<const RouteEntry> route_table();

struct RouteMatch {
  const RouteEntry* entry = nullptr;  // null: no endpoint has that path
  bool method_allowed = false;        // false: `entry` is the path's first, for the 405
  std::string allowed_methods;        // every method the path takes, "GET, PATCH"
  std::string_view path_id;           // what "{id}" matched, a view into the path
};

// The entry for `path` and `method`: an exact path (or "{id}" pattern) before a prefix,
// and among the entries for the path the one with `method` (else the first).
RouteMatch find_route(std::string_view path, http::verb method);

}  // namespace turnout::server
