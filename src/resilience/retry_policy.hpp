#pragma once
// When to retry an upstream call and how long to wait first (docs/REFERENCE.md §4.4):
// pure functions of the attempt number, the upstream's Retry-After, the time and a random
// source, all passed in, so tests drive them without sleeping.
#include "config/config.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>

namespace turnout::resilience {

// An upstream status worth another attempt: rate limited, or a server-side failure that
// another try (or another model) may not hit.
bool retryable_status(unsigned status);

// Retry-After: delta-seconds or an IMF-fixdate HTTP-date, relative to `now_unix`; a date in
// the past is zero. nullopt when the value is neither.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value, double now_unix);

class RetryPolicy {
 public:
  RetryPolicy(unsigned retries, std::chrono::milliseconds first_backoff, std::chrono::milliseconds max_wait)
      : retries_(retries), first_backoff_(first_backoff), max_wait_(max_wait) {}
  static RetryPolicy from(const config::RoutingConfig& routing);

  // Whether the attempt numbered `attempt` (0 = the first) may be followed by another on
  // the same model.
  bool may_retry(unsigned attempt) const { return attempt < retries_; }

  // How long to wait after the failed attempt numbered `attempt`: the upstream's
  // Retry-After when it gave a usable one, else exponential backoff with full jitter
  // (uniform in [0, first_backoff * 2^attempt]); never more than max_wait.
  std::chrono::milliseconds wait_before_retry(unsigned attempt, std::optional<std::string_view> retry_after,
                                              double now_unix, std::mt19937_64& random) const;

 private:
  unsigned retries_;
  std::chrono::milliseconds first_backoff_;
  std::chrono::milliseconds max_wait_;
};

}  // namespace turnout::resilience
