// GET /health: 200 while the gateway can serve (its ledger is writable), else 503 with the
// reason (docs/REFERENCE.md §2.7). Cooling-down models do not make the gateway
// unhealthy: the others still answer.
#include "common/json_text.hpp"
#include "server/endpoints/endpoint.hpp"

#include <fmt/format.h>

namespace turnout::server::endpoints {
namespace {

void append_cooldowns_json(const Services& services, std::string& body) {
  const auto now = Clock::now();
  const double now_unix = unix_now();
  body += R"(,"cooldowns":{)";
  bool first = true;
  for (const auto& state : services.cooldowns.snapshot(now)) {
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
  std::string body = R"({"status":)";
  body += health.healthy ? R"("healthy")" : R"("unhealthy")";
  body += R"(,"ledger":)";
  append_json_string(body, health.healthy ? "ok" : health.reason);
  if (!health.healthy) {
    body += R"(,"reason":)";
    append_json_string(body, "ledger not writable: " + health.reason);
  }
  append_cooldowns_json(services, body);
  body += R"(,"instance_id":)";
  append_json_string(body, services.options.instance_id);
  body += fmt::format(R"(,"version":"{}","uptime_s":{:.1f},"in_flight":{}}})", TURNOUT_VERSION_STRING,
                      std::chrono::duration<double>(Clock::now() - services.started).count(),
                      services.metrics.inflight_value());
  co_return json_response(health.healthy ? http::status::ok : http::status::service_unavailable,
                          call.request.version(), std::move(body));
}

}  // namespace turnout::server::endpoints
