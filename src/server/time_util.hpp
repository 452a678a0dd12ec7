#pragma once
// Small time helpers for the HTTP layer: RFC 3339 / unix-seconds query values
// (/stats?since=) and Retry-After (seconds or HTTP-date). Wall-clock seconds: unix_now().
#include "common/clock.hpp"

#include <chrono>
#include <optional>
#include <string_view>

namespace turnout::server {

// "1732600000", "1732600000.5" or RFC 3339 ("2026-11-26T15:30:00Z", "...+01:00").
std::optional<double> parse_time_param(std::string_view text);

// Retry-After: delta-seconds or an HTTP-date, relative to `now_unix`.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value, double now_unix);

}  // namespace turnout::server
