#include "resilience/retry_policy.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <string>

namespace turnout::resilience {

bool retryable_status(unsigned status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value, double now_unix) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  double seconds = 0;
  const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc() && ptr == value.data() + value.size()) {
    if (seconds < 0) return std::nullopt;
    return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
  }
  // IMF-fixdate, e.g. "Wed, 21 Oct 2015 07:28:00 GMT".
  std::tm tm{};
  const std::string copy(value);
  const char* end = strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const double delta = static_cast<double>(timegm(&tm)) - now_unix;
  return std::chrono::milliseconds(delta > 0 ? static_cast<long long>(delta * 1000) : 0);
}

RetryPolicy RetryPolicy::from(const config::RoutingConfig& routing) {
  return RetryPolicy(routing.retries, std::chrono::milliseconds(routing.retry_backoff_ms),
                     std::chrono::milliseconds(static_cast<long long>(routing.max_retry_wait_s * 1000)));
}

std::chrono::milliseconds RetryPolicy::wait_before_retry(unsigned attempt, std::optional<std::string_view> retry_after,
                                                         double now_unix, std::mt19937_64& random) const {
  if (retry_after) {
    if (auto asked = parse_retry_after(*retry_after, now_unix)) return std::min(*asked, max_wait_);
  }
  const std::uint64_t ceiling = static_cast<std::uint64_t>(first_backoff_.count()) << std::min(attempt, 20u);
  const auto jittered = std::chrono::milliseconds(std::uniform_int_distribution<std::uint64_t>(0, ceiling)(random));
  return std::min(jittered, max_wait_);
}

}  // namespace turnout::resilience
