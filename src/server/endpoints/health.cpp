// GET /health: 200 while the gateway can serve (its calls can be recorded durably), else
// 503 with the reason (docs/REFERENCE.md §2.7). Cooling-down models do not make the
// gateway unhealthy: the others still answer. Open to load balancers without a key; with
// server.api_keys set, a caller without a valid key learns only the status (and, when
// unhealthy, a coarse reason): no instance id (host name and PID), version, cooldowns,
// in-flight count or ledger details.
#include "common/json_text.hpp"
#include "server/endpoints/endpoint.hpp"

#include <fmt/format.h>

namespace turnout::server::endpoints {
namespace {

void append_cooldowns_json(const ConfigSnapshot& settings, std::string& body) {
  const auto now = Clock::now();
  const double now_unix = unix_now();
  body += R"(,"cooldowns":{)";
  bool first = true;
  for (const auto& state : settings.cooldowns->snapshot(now)) {
    if (!state.cooling_down) continue;
    if (!first) body.push_back(',');
    first = false;
    append_json_string(body, state.model);
    const double until_unix = now_unix + std::chrono::duration<double>(state.until - now).count();
    body += fmt::format(R"(:{{"until":{:.3f},"failures":{}}})", until_unix, state.consecutive_failures);
  }
  body.push_back('}');
}

}  // namespace

boost::asio::awaitable<std::optional<HttpResponse>> health(Services& services, Call& call) {
  const auto health = services.ledger.health();
  const auto status = health.healthy ? http::status::ok : http::status::service_unavailable;
  std::string body = R"({"status":)";
  body += health.healthy ? R"("healthy")" : R"("unhealthy")";
  if (!call.exchange.authenticated) {
    if (!health.healthy) body += R"(,"reason":"ledger not writable")";
    body.push_back('}');
    co_return json_response(status, call.request.version(), std::move(body));
  }
  body += R"(,"ledger":)";
  append_json_string(body, !health.healthy ? health.reason : !health.degraded.empty() ? health.degraded : "ok");
  if (!health.healthy) {
    body += R"(,"reason":)";
    append_json_string(body, "ledger not writable: " + health.reason);
  }
  body += fmt::format(R"(,"spooled":{})", health.spooled);
  append_cooldowns_json(call.settings, body);
  body += R"(,"instance_id":)";
  append_json_string(body, services.options.instance_id);
  body += fmt::format(R"(,"version":"{}","uptime_s":{:.1f},"in_flight":{}}})", TURNOUT_VERSION_STRING,
                      std::chrono::duration<double>(Clock::now() - services.started).count(),
                      services.metrics.inflight_value());
  co_return json_response(status, call.request.version(), std::move(body));
}

}  // namespace turnout::server::endpoints
