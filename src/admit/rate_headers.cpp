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
  if (window.kind == governance::RateKind::parallel) return {};  // OpenAI has no header for it
  const std::string_view unit = window.kind == governance::RateKind::tokens ? "tokens" : "requests";
  const std::uint64_t used = window.used + (admitted ? window.requested : 0);
  return {
      {fmt::format("x-ratelimit-limit-{}", unit), std::to_string(window.limit)},
      {fmt::format("x-ratelimit-remaining-{}", unit), std::to_string(used >= window.limit ? 0 : window.limit - used)},
      {fmt::format("x-ratelimit-reset-{}", unit), openai_duration(window.window_end_ms - now_ms)},
  };
}

Refusal rate_refusal(const KeyGrant& grant, const governance::RequestWindow& window, std::int64_t now_ms) {
  const std::int64_t wait_ms = std::max<std::int64_t>(window.window_end_ms - now_ms, 1);
  const bool team = window.scope.starts_with("team:");
  Refusal refusal;
  refusal.status = 429;
  refusal.type = window.kind == governance::RateKind::tokens ? "tokens" : "requests";
  refusal.code = "rate_limit_exceeded";
  refusal.reason = window.kind == governance::RateKind::tokens     ? "tpm"
                   : window.kind == governance::RateKind::parallel ? "max_parallel"
                                                                   : "rpm";
  const std::string_view what = window.kind == governance::RateKind::tokens     ? "tokens per minute"
                                : window.kind == governance::RateKind::parallel ? "concurrent requests"
                                                                                : "requests per minute";
  refusal.message = fmt::format(
      "Rate limit reached for {} on {} '{}' (key {}): Limit {}, Used {}, Requested {}. Please try again in {}.", what,
      team ? "team" : "key", team ? window.scope.substr(5) : grant.key.id, grant.key.id, window.limit, window.used,
      window.requested, openai_duration(wait_ms));
  if (window.kind == governance::RateKind::tokens && window.requested > window.limit)
    refusal.message += " This request alone needs more tokens than the limit: lower max_completion_tokens.";
  refusal.headers = request_limit_headers(window, false, now_ms);
  refusal.headers.emplace_back("retry-after", std::to_string((wait_ms + 999) / 1000));
  refusal.headers.emplace_back("retry-after-ms", std::to_string(wait_ms));
  return refusal;
}

}  // namespace turnout::admit
