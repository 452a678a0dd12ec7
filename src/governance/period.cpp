#include "governance/period.hpp"

#include <date/date.h>
#include <date/tz.h>
#include <fmt/format.h>

#include <chrono>
#include <stdexcept>

namespace turnout::governance {
namespace {

using std::chrono::milliseconds;

const date::time_zone* find_zone(std::string_view timezone) {
  try {
    return date::locate_zone(timezone);
  } catch (const std::exception&) {
    return nullptr;  // unknown name, or no tz database on this machine
  }
}

std::int64_t to_unix_ms(const date::time_zone& zone, date::local_days local_midnight) {
  // earliest: an ambiguous midnight (clocks set back across it) starts at its first
  // occurrence; a nonexistent one (clocks set forward across it) at the jump.
  const auto instant = zone.to_sys(local_midnight, date::choose::earliest);
  return std::chrono::duration_cast<milliseconds>(instant.time_since_epoch()).count();
}

}  // namespace

std::optional<BudgetPeriod> parse_budget_period(std::string_view name) {
  if (name == "day") return BudgetPeriod::day;
  if (name == "week") return BudgetPeriod::week;
  if (name == "month") return BudgetPeriod::month;
  if (name == "lifetime") return BudgetPeriod::lifetime;
  return std::nullopt;
}

std::string_view budget_period_name(BudgetPeriod period) {
  switch (period) {
    case BudgetPeriod::day:
      return "day";
    case BudgetPeriod::week:
      return "week";
    case BudgetPeriod::month:
      return "month";
    case BudgetPeriod::lifetime:
      return "lifetime";
  }
  return "lifetime";
}

bool known_timezone(std::string_view timezone) { return !timezone.empty() && find_zone(timezone) != nullptr; }

Result<PeriodWindow> period_window(BudgetPeriod period, std::string_view timezone, std::int64_t now_ms) {
  if (period == BudgetPeriod::lifetime) return PeriodWindow{};
  const date::time_zone* zone = find_zone(timezone);
  if (zone == nullptr) return make_error(fmt::format("unknown time zone '{}'", timezone));
  const date::sys_time<milliseconds> now{milliseconds{now_ms}};
  const auto local = zone->to_local(now);
  const date::local_days today = date::floor<date::days>(local);
  date::local_days start;
  date::local_days end;
  switch (period) {
    case BudgetPeriod::day:
      start = today;
      end = today + date::days{1};
      break;
    case BudgetPeriod::week: {
      // ISO weeks start on Monday.
      const date::weekday weekday{today};
      start = today - (weekday - date::Monday);
      end = start + date::days{7};
      break;
    }
    case BudgetPeriod::month:
    case BudgetPeriod::lifetime: {
      const date::year_month_day ymd{today};
      const date::year_month first = ymd.year() / ymd.month();
      start = date::local_days{first / 1};
      end = date::local_days{(first + date::months{1}) / 1};
      break;
    }
  }
  return PeriodWindow{to_unix_ms(*zone, start), to_unix_ms(*zone, end)};
}

}  // namespace turnout::governance
