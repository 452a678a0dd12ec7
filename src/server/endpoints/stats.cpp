// GET /stats[?since=&until=&recent=N]: spend, savings and latency from the ledger's
// roll-ups (docs/REFERENCE.md §5). The query runs on the blocking pool, off the event loop.
#include "admit/governance_report.hpp"
#include "common/time_text.hpp"
#include "server/endpoints/blocking.hpp"
#include "server/endpoints/endpoint.hpp"
#include "server/endpoints/fold_wait.hpp"
#include "server/openai_error.hpp"

#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include <charconv>

namespace turnout::server::endpoints {
namespace asio = boost::asio;

namespace {

// The query's parameters, or the 400 that names the bad one.
std::variant<ledger::StatsQuery, ApiError> parse_stats_query(std::string_view target_text) {
  ledger::StatsQuery query;
  auto bad = [](std::string param, std::string message) {
    return ApiError{400, std::move(message), "invalid_request_error", std::move(param), "invalid_value"};
  };
  auto target = boost::urls::parse_origin_form(target_text);
  if (!target) return bad("", "The request target is not a valid URL.");
  for (const auto& param : target->params()) {
    if (param.key == "since" || param.key == "until") {
      auto t = parse_time_param(param.value);
      if (!t) return bad(param.key, fmt::format("Invalid '{}': expected unix seconds or an RFC 3339 time.", param.key));
      (param.key == "since" ? query.since : query.until) = *t;
    } else if (param.key == "recent") {
      std::size_t n = 0;
      const auto& v = param.value;
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc() || ptr != v.data() + v.size() || n > 10000)
        return bad("recent", "Invalid 'recent': expected an integer from 0 to 10000.");
      query.recent = n;
    }
  }
  return query;
}

}  // namespace

asio::awaitable<std::optional<HttpResponse>> stats(Services& services, Call& call) {
  const unsigned version = call.request.version();
  auto parsed = parse_stats_query(call.request.target());
  if (auto* error = std::get_if<ApiError>(&parsed)) {
    services.metrics.record_rejection("invalid_stats_query", 400);
    co_return error_response(*error, version);
  }
  const ledger::StatsQuery query = std::get<ledger::StatsQuery>(parsed);
  // Every call acknowledged before this request is counted once the writer has folded;
  // when it could not (in time), the body says why (rollups_stale).
  const ledger::FoldOutcome folded = co_await await_fold(services);
  auto report = co_await on_blocking_pool<Result<ledger::StatsReport>>(
      services, [&services, query] { return services.ledger.stats(query); });
  if (!report)
    co_return error_response(ApiError{503, "The ledger could not be read: " + report.error().message, "server_error", "",
                                      "ledger_unavailable"},
                             version);
  if (!folded.complete) report->rollups_stale = folded.problem;
  std::string body = ledger::render_stats_json(*report);
  if (services.options.governance_store != nullptr && services.options.admission != nullptr) {
    governance::GovernanceStore* store = services.options.governance_store;
    auto activity = co_await on_blocking_pool<governance::StoreResult<std::vector<governance::ScopeActivity>>>(
        services, [store] { return store->activity(admit::kReportedScopes); });
    if (activity) admit::append_governance_stats(body, *activity, services.options.admission->refusals().snapshot());
  }
  co_return json_response(http::status::ok, version, body);
}

}  // namespace turnout::server::endpoints
