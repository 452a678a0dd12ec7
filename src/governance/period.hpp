#pragma once
// Budget periods: a calendar day, an ISO week (Monday to Monday) or a calendar month in
// the scope's IANA time zone, or the whole lifetime. A period is identified by its start
// (unix ms), which is part of each budget row's key: a new period is simply a new row, so
// nothing ever resets a counter. Time-zone rules come from the system's tz database
// (/usr/share/zoneinfo) through Howard Hinnant's date library, never hand-written DST rules.
#include "common/result.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::governance {

enum class BudgetPeriod { day, week, month, lifetime };

std::optional<BudgetPeriod> parse_budget_period(std::string_view name);
std::string_view budget_period_name(BudgetPeriod period);

// Whether the tz database knows `timezone` (e.g. "Europe/Berlin", "UTC").
bool known_timezone(std::string_view timezone);

struct PeriodWindow {
  std::int64_t start_ms = 0;           // lifetime: 0
  std::optional<std::int64_t> end_ms;  // exclusive; none for lifetime
};

// The period that holds the instant `now_ms` (unix ms). An unknown time zone is an error.
// Local midnights that do not exist (a DST jump at midnight) start at the jump.
Result<PeriodWindow> period_window(BudgetPeriod period, std::string_view timezone, std::int64_t now_ms);

}  // namespace turnout::governance
