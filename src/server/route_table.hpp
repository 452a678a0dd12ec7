#pragma once
// The one table of the gateway's endpoints: path, method, who may call it, handler.
// Adding an endpoint is one file under endpoints/ plus one line in route_table.cpp.
#include "server/endpoints/endpoint.hpp"

#include <span>
#include <string_view>

namespace turnout::server {

enum class Access {
  open,        // anyone (health probes)
  client_key,  // a gateway key when server.api_keys is set
};

enum class Match {
  exact,   // the path itself
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

// The entry for `path` and `method`: an exact path before a prefix, and among the entries
// for the path the one with `method` (else the first, whose method the 405 names). Null
// when no endpoint has that path.
const RouteEntry* find_route(std::string_view path, http::verb method);

}  // namespace turnout::server
