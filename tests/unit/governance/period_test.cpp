// Budget periods in IANA time zones (issue 17, item 4): the period start is the row key,
// so these boundaries decide when a budget admits again.
#include "governance/period.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace {

using namespace turnout::governance;

// Unix ms of a UTC civil time.
std::int64_t utc_ms(int y, unsigned m, unsigned d, int hh, int mm, int ss) {
  using namespace std::chrono;
  const auto days = sys_days{year{y} / month{m} / day{d}};
  return duration_cast<milliseconds>((days + hours{hh} + minutes{mm} + seconds{ss}).time_since_epoch()).count();
}

TEST(Period, BerlinMonthEndsAtLocalMidnight) {
  // 2026-12-31 23:59:59 in Berlin (CET, UTC+1) is 22:59:59Z: still December.
  auto december = period_window(BudgetPeriod::month, "Europe/Berlin", utc_ms(2026, 12, 31, 22, 59, 59));
  ASSERT_TRUE(december);
  EXPECT_EQ(december->start_ms, utc_ms(2026, 11, 30, 23, 0, 0));
  EXPECT_EQ(december->end_ms, utc_ms(2026, 12, 31, 23, 0, 0));
  // One second later it is January in Berlin: a new period, a new row.
  auto january = period_window(BudgetPeriod::month, "Europe/Berlin", utc_ms(2026, 12, 31, 23, 0, 0));
  ASSERT_TRUE(january);
  EXPECT_EQ(january->start_ms, utc_ms(2026, 12, 31, 23, 0, 0));
  EXPECT_EQ(january->end_ms, utc_ms(2027, 1, 31, 23, 0, 0));
}

TEST(Period, DaysAcrossDaylightSavingChangesAre23And25Hours) {
  // Berlin springs forward on 2026-03-29 (02:00 -> 03:00) and falls back on 2026-10-25.
  auto spring = period_window(BudgetPeriod::day, "Europe/Berlin", utc_ms(2026, 3, 29, 12, 0, 0));
  ASSERT_TRUE(spring);
  EXPECT_EQ(spring->start_ms, utc_ms(2026, 3, 28, 23, 0, 0));
  EXPECT_EQ(*spring->end_ms - spring->start_ms, 23LL * 3600 * 1000);
  auto autumn = period_window(BudgetPeriod::day, "Europe/Berlin", utc_ms(2026, 10, 25, 12, 0, 0));
  ASSERT_TRUE(autumn);
  EXPECT_EQ(autumn->start_ms, utc_ms(2026, 10, 24, 22, 0, 0));
  EXPECT_EQ(*autumn->end_ms - autumn->start_ms, 25LL * 3600 * 1000);
  // A month that holds the spring change is 1 hour short of 31 days.
  auto march = period_window(BudgetPeriod::month, "Europe/Berlin", utc_ms(2026, 3, 15, 0, 0, 0));
  ASSERT_TRUE(march);
  EXPECT_EQ(*march->end_ms - march->start_ms, (31LL * 24 - 1) * 3600 * 1000);
}

TEST(Period, IsoWeekStartsOnMonday) {
  // Thursday 2026-12-31 (UTC) is in the week of Monday 2026-12-28.
  auto week = period_window(BudgetPeriod::week, "UTC", utc_ms(2026, 12, 31, 10, 0, 0));
  ASSERT_TRUE(week);
  EXPECT_EQ(week->start_ms, utc_ms(2026, 12, 28, 0, 0, 0));
  EXPECT_EQ(week->end_ms, utc_ms(2027, 1, 4, 0, 0, 0));
  // A Monday is the first day of its own week.
  auto monday = period_window(BudgetPeriod::week, "UTC", utc_ms(2027, 1, 4, 0, 0, 0));
  ASSERT_TRUE(monday);
  EXPECT_EQ(monday->start_ms, utc_ms(2027, 1, 4, 0, 0, 0));
}

TEST(Period, LifetimeHasOneRowForever) {
  auto lifetime = period_window(BudgetPeriod::lifetime, "UTC", utc_ms(2030, 1, 1, 0, 0, 0));
  ASSERT_TRUE(lifetime);
  EXPECT_EQ(lifetime->start_ms, 0);
  EXPECT_FALSE(lifetime->end_ms);
}

TEST(Period, UnknownTimeZoneIsAnError) {
  EXPECT_FALSE(period_window(BudgetPeriod::day, "Mars/Olympus", 0));
  EXPECT_FALSE(known_timezone("Mars/Olympus"));
  EXPECT_TRUE(known_timezone("America/New_York"));
  EXPECT_EQ(parse_budget_period("week"), BudgetPeriod::week);
  EXPECT_FALSE(parse_budget_period("fortnight"));
}

}  // namespace
