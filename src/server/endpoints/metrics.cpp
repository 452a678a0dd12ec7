// GET /metrics: Prometheus text exposition (docs/REFERENCE.md §2.8).
#include "server/endpoints/endpoint.hpp"

namespace turnout::server::endpoints {

boost::asio::awaitable<std::optional<HttpResponse>> metrics(Services& services, Call& call) {
  HttpResponse res{http::status::ok, call.request.version()};
  res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.body() = services.metrics.render();
  append_cooldown_metrics(res.body(), call.settings.cooldowns->snapshot(Clock::now()));
  if (services.tracer) append_trace_export_metrics(res.body(), services.tracer->counters());
  co_return res;
}

}  // namespace turnout::server::endpoints
