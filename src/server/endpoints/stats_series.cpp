// GET /stats/series[?since=&until=&step=]: per-bucket figures over the ledger's roll-ups
// (docs/REFERENCE.md §2.12). `since` is rounded down and `until` up to a multiple of
// `step`, so every bucket is a sum of whole roll-up buckets and the answer costs the same
// at any ledger size. The query runs on the blocking pool, off the event loop.
#include "common/clock.hpp"
#include "common/time_text.hpp"
#include "ledger/series_assembly.hpp"
#include "server/endpoints/blocking.hpp"
#include "server/endpoints/endpoint.hpp"
#include "server/endpoints/fold_wait.hpp"
#include "server/openai_error.hpp"

#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <optional>
#include <variant>

namespace turnout::server::endpoints {
namespace asio = boost::asio;

namespace {

constexpr std::int64_t kDefaultWindow = 3'600;
// Unix seconds accepted for since/until: 1970 up to the year 9999.
constexpr double kLatestTime = 253'402'300'799;
// The default step: the finest of these giving fewer than kDefaultBuckets buckets. Each is
// a whole roll-up width, so a series bucket is one roll-up row per group: a finer default
// (5 or 30 minutes for a day or a week) would read every minute row of the window, which at
// 10 million records costs seconds instead of milliseconds (docs/BENCHMARKS.md).
constexpr std::array<std::int64_t, 5> kDefaultSteps{60, 3'600, 21'600, 86'400, 604'800};
constexpr std::int64_t kDefaultBuckets = 360;

ApiError bad_param(std::string param, std::string message) {
  return ApiError{400, std::move(message), "invalid_request_error", std::move(param), "invalid_value"};
}

std::int64_t floor_to(std::int64_t value, std::int64_t step) { return value / step * step; }
std::int64_t ceil_to(std::int64_t value, std::int64_t step) { return (value + step - 1) / step * step; }

// The parameters as given (times not yet rounded), or the 400 naming the bad one.
struct SeriesParams {
  std::optional<double> since, until;
  std::optional<std::int64_t> step;
};

std::variant<SeriesParams, ApiError> parse_series_params(std::string_view target_text) {
  SeriesParams params;
  auto target = boost::urls::parse_origin_form(target_text);
  if (!target) return bad_param("", "The request target is not a valid URL.");
  for (const auto& param : target->params()) {
    if (param.key == "since" || param.key == "until") {
      auto t = parse_time_param(param.value);
      if (!t || !(*t >= 0 && *t <= kLatestTime))
        return bad_param(param.key, fmt::format("Invalid '{}': expected unix seconds or an RFC 3339 time "
                                                "between 1970 and 9999.",
                                                param.key));
      (param.key == "since" ? params.since : params.until) = *t;
    } else if (param.key == "step") {
      std::int64_t seconds = 0;
      const auto& v = param.value;
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
      if (ec != std::errc() || ptr != v.data() + v.size() || seconds < ledger::kMinSeriesStep ||
          seconds % ledger::kMinSeriesStep != 0 || static_cast<double>(seconds) > kLatestTime)
        return bad_param("step", fmt::format("Invalid 'step': expected whole seconds, a positive multiple of {}.",
                                             ledger::kMinSeriesStep));
      params.step = seconds;
    }
  }
  return params;
}

// The series query: defaults filled in (until now, since an hour before, a step giving
// at most kDefaultBuckets buckets), since rounded down and until up to the step.
std::variant<ledger::SeriesQuery, ApiError> series_query_of(const SeriesParams& params) {
  const double until = params.until.value_or(unix_now());
  const double since = params.since.value_or(std::max(until - kDefaultWindow, 0.0));
  if (!(since < until)) return bad_param("until", "Invalid 'until': it must be after 'since'.");
  const auto since_seconds = static_cast<std::int64_t>(std::floor(since));
  const auto until_seconds = static_cast<std::int64_t>(std::ceil(until));
  std::int64_t step = kDefaultSteps.back();
  if (params.step) {
    step = *params.step;
  } else {
    for (const std::int64_t candidate : kDefaultSteps) {
      if ((until_seconds - since_seconds) / candidate < kDefaultBuckets) {
        step = candidate;
        break;
      }
    }
  }
  ledger::SeriesQuery query{floor_to(since_seconds, step), ceil_to(until_seconds, step), step};
  if (auto problem = ledger::series_query_problem(query)) return bad_param(problem->param, problem->message);
  return query;
}

}  // namespace

asio::awaitable<std::optional<HttpResponse>> stats_series(Services& services, Call& call) {
  const unsigned version = call.request.version();
  auto params = parse_series_params(call.request.target());
  std::variant<ledger::SeriesQuery, ApiError> parsed = ApiError{};
  if (auto* error = std::get_if<ApiError>(&params)) {
    parsed = std::move(*error);
  } else {
    parsed = series_query_of(std::get<SeriesParams>(params));
  }
  if (auto* error = std::get_if<ApiError>(&parsed)) {
    services.metrics.record_rejection("invalid_stats_query", 400);
    co_return error_response(*error, version);
  }
  const ledger::SeriesQuery query = std::get<ledger::SeriesQuery>(parsed);
  // Every call acknowledged before this request is counted once the writer has folded;
  // when it could not (in time), the body says why (rollups_stale).
  const ledger::FoldOutcome folded = co_await await_fold(services);
  auto report = co_await on_blocking_pool<Result<ledger::SeriesReport>>(
      services, [&services, query] { return services.ledger.series(query); });
  if (!report)
    co_return error_response(ApiError{503, "The ledger could not be read: " + report.error().message, "server_error", "",
                                      "ledger_unavailable"},
                             version);
  if (!folded.complete) report->rollups_stale = folded.problem;
  co_return json_response(http::status::ok, version, ledger::render_series_json(*report));
}

}  // namespace turnout::server::endpoints
