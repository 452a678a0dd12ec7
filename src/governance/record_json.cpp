#include "governance/record_json.hpp"

#include "common/json_text.hpp"
#include "pricing/pricing.hpp"

#include <date/date.h>
#include <fmt/format.h>

#include <chrono>

namespace turnout::governance {
namespace {

void field(std::string& out, std::string_view name) {
  if (out.size() > 1) out += ',';
  append_json_string(out, name);
  out += ':';
}

void string_field(std::string& out, std::string_view name, const std::optional<std::string>& value) {
  field(out, name);
  if (value) {
    append_json_string(out, *value);
  } else {
    out += "null";
  }
}

template <class T>
void number_field(std::string& out, std::string_view name, const std::optional<T>& value) {
  field(out, name);
  out += value ? std::to_string(*value) : std::string("null");
}

void usd_field(std::string& out, std::string_view name, const std::optional<std::int64_t>& pico) {
  field(out, name);
  out += pico ? pricing::format_usd_pico(*pico) : std::string("null");
}

void time_field(std::string& out, std::string_view name, const std::optional<std::int64_t>& unix_ms) {
  string_field(out, name, unix_ms ? std::optional<std::string>(rfc3339_ms(*unix_ms)) : std::nullopt);
}

void models_field(std::string& out, const std::optional<std::vector<std::string>>& models) {
  field(out, "models");
  if (!models) {
    out += "null";
    return;
  }
  out += '[';
  for (std::size_t i = 0; i < models->size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, (*models)[i]);
  }
  out += ']';
}

void limits_fields(std::string& out, const Limits& limits) {
  usd_field(out, "budget_usd", limits.budget_pico);
  string_field(out, "budget_period", std::string(budget_period_name(limits.budget_period)));
  string_field(out, "timezone", limits.timezone);
  number_field(out, "rpm", limits.rpm);
  number_field(out, "tpm", limits.tpm);
  number_field(out, "max_parallel", limits.max_parallel);
}

}  // namespace

std::string rfc3339_ms(std::int64_t unix_ms) {
  const date::sys_time<std::chrono::milliseconds> t{std::chrono::milliseconds{unix_ms}};
  if (unix_ms % 1000 == 0) return date::format("%FT%TZ", date::floor<std::chrono::seconds>(t));
  return date::format("%FT%TZ", t);
}

std::string usage_json(const ScopeUsage& usage) {
  std::string out = "{";
  time_field(out, "period_start", usage.period.end_ms ? std::optional(usage.period.start_ms) : std::nullopt);
  time_field(out, "period_end", usage.period.end_ms);
  usd_field(out, "spent_usd", usage.spent_pico);
  usd_field(out, "held_usd", usage.held_pico);
  usd_field(out, "remaining_usd", usage.remaining_pico);
  number_field(out, "requests_this_minute", std::optional(usage.requests_this_minute));
  number_field(out, "tokens_this_minute", std::optional(usage.tokens_this_minute));
  out += '}';
  return out;
}

std::string team_json(const TeamRecord& team, const ScopeUsage* usage) {
  std::string out = "{";
  string_field(out, "id", team.id);
  string_field(out, "name", team.name);
  models_field(out, team.models);
  time_field(out, "expires_at", team.expires_at_ms);
  limits_fields(out, team.limits);
  time_field(out, "created_at", team.created_at_ms);
  time_field(out, "updated_at", team.updated_at_ms);
  if (usage) {
    field(out, "usage");
    out += usage_json(*usage);
  }
  out += '}';
  return out;
}

std::string key_json(const KeyRecord& key, const ScopeUsage* usage, const std::string* whole_key) {
  std::string out = "{";
  string_field(out, "id", key.id);
  if (whole_key) string_field(out, "key", *whole_key);
  string_field(out, "name", key.name);
  string_field(out, "team", key.team_id);
  models_field(out, key.models);
  time_field(out, "expires_at", key.expires_at_ms);
  field(out, "revoked");
  out += key.revoked_at_ms ? "true" : "false";
  time_field(out, "revoked_at", key.revoked_at_ms);
  limits_fields(out, key.limits);
  time_field(out, "created_at", key.created_at_ms);
  time_field(out, "updated_at", key.updated_at_ms);
  if (usage) {
    field(out, "usage");
    out += usage_json(*usage);
  }
  out += '}';
  return out;
}

Result<std::int64_t> parse_usd(std::string_view text) {
  constexpr int kPlaces = 12;  // pico-dollars
  const auto bad = [&] {
    return make_error(fmt::format("expected a plain decimal amount of US dollars such as 0.01 or 25, got '{}'",
                                  text.substr(0, 40)));
  };
  if (text.empty()) return bad();
  std::int64_t whole = 0;
  std::int64_t fraction = 0;
  int places = -1;  // -1: no '.' yet
  int digits = 0;
  for (const char c : text) {
    if (c == '.') {
      if (places >= 0) return bad();
      places = 0;
      continue;
    }
    if (c < '0' || c > '9') return bad();
    ++digits;
    if (places < 0) {
      if (whole > 9'000'000) return make_error("the amount is too large (at most $9,000,000)");
      whole = whole * 10 + (c - '0');
    } else {
      if (++places > kPlaces) {
        if (c != '0') return make_error("at most 12 decimal places (a pico-dollar)");
        continue;
      }
      fraction = fraction * 10 + (c - '0');
    }
  }
  if (digits == 0) return bad();
  for (int p = std::max(places, 0); p < kPlaces; ++p) fraction *= 10;
  if (whole > 9'000'000) return make_error("the amount is too large (at most $9,000,000)");
  return whole * 1'000'000'000'000 + fraction;
}

}  // namespace turnout::governance
