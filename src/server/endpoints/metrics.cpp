// GET /metrics: Prometheus text exposition (docs/REFERENCE.md §2.8; governance §8.9).
#include "admit/governance_report.hpp"
#include "server/endpoints/blocking.hpp"
#include "server/endpoints/endpoint.hpp"

namespace turnout::server::endpoints {

boost::asio::awaitable<std::optional<HttpResponse>> metrics(Services& services, Call& call) {
  HttpResponse res{http::status::ok, call.request.version()};
  res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.body() = services.metrics.render();
  append_cooldown_metrics(res.body(), call.settings.cooldowns->snapshot(Clock::now()));
  const ledger::LedgerHealth ledger = services.ledger.health();
  append_ledger_journal_metrics(res.body(), ledger.journals_off, ledger.journal_write_failures);
  if (services.options.access_log_dropped_lines)
    append_access_log_metrics(res.body(), services.options.access_log_dropped_lines());
  if (services.tracer) append_trace_export_metrics(res.body(), services.tracer->counters());
  if (services.options.governance_store != nullptr && services.options.admission != nullptr) {
    governance::GovernanceStore* store = services.options.governance_store;
    auto activity = co_await on_blocking_pool<governance::StoreResult<std::vector<governance::ScopeActivity>>>(
        services, [store] { return store->activity(admit::kReportedScopes); });
    // The database away: the in-process refusals still show; the database figures do not.
    admit::append_governance_metrics(res.body(), activity ? *activity : std::vector<governance::ScopeActivity>{},
                                     services.options.admission->refusals().snapshot());
  }
  co_return res;
}

}  // namespace turnout::server::endpoints
