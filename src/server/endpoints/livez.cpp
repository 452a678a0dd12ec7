// GET /livez: liveness for orchestrators (docs/REFERENCE.md §2.7). Always 200 while the
// process answers HTTP: it looks at nothing else — not the ledger, the database or the
// upstreams — so a database outage makes replicas unready (/health), never restarted.
#include "common/json_text.hpp"
#include "server/endpoints/endpoint.hpp"

#include <fmt/format.h>

namespace turnout::server::endpoints {

boost::asio::awaitable<std::optional<HttpResponse>> livez(Services& services, Call& call) {
  // As /health: with server.api_keys set, no host name or PID (instance id) without a key.
  if (!call.exchange.authenticated)
    co_return json_response(http::status::ok, call.request.version(), R"({"status":"alive"})");
  std::string body = R"({"status":"alive","instance_id":)";
  append_json_string(body, services.options.instance_id);
  body += fmt::format(R"(,"version":"{}","uptime_s":{:.1f}}})", TURNOUT_VERSION_STRING,
                      std::chrono::duration<double>(Clock::now() - services.started).count());
  co_return json_response(http::status::ok, call.request.version(), std::move(body));
}

}  // namespace turnout::server::endpoints
