#include "admit/rate_headers.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace turnout::admit {

std::string openai_duration(std::int64_t ms) {
  ms = std::max<std::int64_t>(ms, 0);
  if (ms < 1000) return fmt::format("{}ms", ms);
  const std::int64_t hours = ms / 3'600'000;
  const std::int64_t minutes = ms / 60'000 % 60;
  const std::int64_t millis = ms % 60'000;
  std::string seconds = fmt::format("{}", millis / 1000);
  if (millis % 1000 != 0) {
    seconds += fmt::format(".{:03}", millis % 1000);
    while (seconds.back() == '0') seconds.pop_back();
  }
  if (hours > 0) return fmt::format("{}h{}m{}s", hours, minutes, seconds);
  if (minutes > 0) return fmt::format("{}m{}s", minutes, seconds);
  return seconds + "s";
}

std::vector<Header> request_limit_headers(const governance::RequestWindow& window, bool admitted, std::int64_t now_ms) {
  const std::uint64_t used = window.used + (admitted ? 1 : 0);
  return {
      {"x-ratelimit-limit-requests", std::to_string(window.limit)},
      {"x-ratelimit-remaining-requests", std::to_string(used >= window.limit ? 0 : window.limit - used)},
      {"x-ratelimit-reset-requests", openai_duration(window.window_end_ms - now_ms)},
  };
}

Refusal rate_refusal(const KeyGrant& grant, const governance::RequestWindow& window, std::int64_t now_ms) {
  const std::int64_t wait_ms = std::max<std::int64_t>(window.window_end_ms - now_ms, 1);
  const bool team = window.scope.starts_with("team:");
  Refusal refusal;
  refusal.status = 429;
  refusal.type = "requests";
  refusal.code = "rate_limit_exceeded";
  refusal.message = fmt::format(
      "Rate limit reached for requests per minute on {} '{}' (key {}): Limit {}, Used {}, Requested 1. "
      "Please try again in {}.",
      team ? "team" : "key", team ? window.scope.substr(5) : grant.key.id, grant.key.id, window.limit, window.used,
      openai_duration(wait_ms));
  refusal.headers = request_limit_headers(window, false, now_ms);
  refusal.headers.emplace_back("retry-after", std::to_string((wait_ms + 999) / 1000));
  refusal.headers.emplace_back("retry-after-ms", std::to_string(wait_ms));
  return refusal;
}

}  // namespace turnout::admit
