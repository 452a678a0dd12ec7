#include "admit/governance_report.hpp"

#include "pricing/pricing.hpp"

#include <fmt/format.h>

#include <string_view>
#include <utility>

namespace turnout::admit {
namespace {

// "key:0123..." -> {"key", "0123..."}. Ids are hex or [A-Za-z0-9._-]: nothing to escape.
std::pair<std::string_view, std::string_view> split_scope(std::string_view scope) {
  const auto colon = scope.find(':');
  if (colon == std::string_view::npos) return {"key", scope};
  return {scope.substr(0, colon), scope.substr(colon + 1)};
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

template <class Field>
void scope_series(std::string& out, const std::vector<governance::ScopeActivity>& activity, std::string_view name,
                  Field field) {
  for (const governance::ScopeActivity& scope : activity) {
    const auto [kind, id] = split_scope(scope.scope);
    out += fmt::format("{}{{scope=\"{}\",id=\"{}\"}} {}\n", name, kind, id, field(scope));
  }
}

}  // namespace

void append_governance_metrics(std::string& out, const std::vector<governance::ScopeActivity>& activity,
                               const std::vector<RefusalCount>& refusals) {
  using governance::ScopeActivity;
  const auto usd = [](std::int64_t pico) { return pricing::format_usd_pico(pico); };
  family(out, "turnout_governance_live_holds", "gauge", "Calls in flight holding budget, tokens or a slot (database-wide).");
  scope_series(out, activity, "turnout_governance_live_holds", [](const ScopeActivity& s) { return s.live_holds; });
  family(out, "turnout_governance_held_usd", "gauge", "USD held by live holds (database-wide).");
  scope_series(out, activity, "turnout_governance_held_usd", [&](const ScopeActivity& s) { return usd(s.held_pico); });
  family(out, "turnout_governance_expired_holds_total", "counter",
         "Holds never settled by their call, charged in full at expiry (database-wide).");
  scope_series(out, activity, "turnout_governance_expired_holds_total",
               [](const ScopeActivity& s) { return s.expired_holds; });
  family(out, "turnout_governance_expired_usd_total", "counter", "USD charged by expiry (database-wide).");
  scope_series(out, activity, "turnout_governance_expired_usd_total",
               [&](const ScopeActivity& s) { return usd(s.expired_pico); });
  family(out, "turnout_governance_overruns_total", "counter",
         "Calls whose actual cost exceeded their hold (database-wide).");
  scope_series(out, activity, "turnout_governance_overruns_total", [](const ScopeActivity& s) { return s.overruns; });
  family(out, "turnout_governance_overrun_usd_total", "counter", "USD charged beyond holds (database-wide).");
  scope_series(out, activity, "turnout_governance_overrun_usd_total",
               [&](const ScopeActivity& s) { return usd(s.overrun_pico); });
  family(out, "turnout_governance_refusals_total", "counter", "Calls on virtual keys refused by this replica.");
  for (const RefusalCount& refusal : refusals)
    out += fmt::format("turnout_governance_refusals_total{{key=\"{}\",team=\"{}\",reason=\"{}\"}} {}\n",
                       refusal.key_id, refusal.team_id, refusal.reason, refusal.count);
}

std::string governance_stats_json(const std::vector<governance::ScopeActivity>& activity,
                                  const std::vector<RefusalCount>& refusals) {
  std::string out = "{\"scopes\":[";
  for (std::size_t i = 0; i < activity.size(); ++i) {
    const governance::ScopeActivity& s = activity[i];
    const auto [kind, id] = split_scope(s.scope);
    out += fmt::format(
        "{}{{\"scope\":\"{}\",\"id\":\"{}\",\"live_holds\":{},\"held_usd\":{},\"expired_holds\":{},"
        "\"expired_usd\":{},\"overruns\":{},\"overrun_usd\":{}}}",
        i ? "," : "", kind, id, s.live_holds, pricing::format_usd_pico(s.held_pico), s.expired_holds,
        pricing::format_usd_pico(s.expired_pico), s.overruns, pricing::format_usd_pico(s.overrun_pico));
  }
  out += "],\"refusals\":[";
  for (std::size_t i = 0; i < refusals.size(); ++i) {
    const RefusalCount& r = refusals[i];
    out += fmt::format("{}{{\"key\":\"{}\",\"team\":\"{}\",\"reason\":\"{}\",\"count\":{}}}", i ? "," : "", r.key_id,
                       r.team_id, r.reason, r.count);
  }
  out += "]}";
  return out;
}

void append_governance_stats(std::string& stats_json, const std::vector<governance::ScopeActivity>& activity,
                             const std::vector<RefusalCount>& refusals) {
  if (!stats_json.ends_with('}')) return;
  stats_json.pop_back();
  stats_json += ",\"governance\":" + governance_stats_json(activity, refusals) + "}";
}

}  // namespace turnout::admit
