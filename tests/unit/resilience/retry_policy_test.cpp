// The retry policy is pure: the attempt number, Retry-After, the time and the random
// source are passed in, so these tests need no clock and no sleeping.
#include "resilience/retry_policy.hpp"

#include <gtest/gtest.h>

#include <set>

namespace turnout::resilience {
namespace {

using std::chrono::milliseconds;

TEST(RetryableStatus, RateLimitsAndServerFailuresOnly) {
  for (unsigned s : {429u, 500u, 502u, 503u, 504u}) EXPECT_TRUE(retryable_status(s)) << s;
  for (unsigned s : {200u, 400u, 401u, 403u, 404u, 413u, 422u}) EXPECT_FALSE(retryable_status(s)) << s;
}

TEST(RetryAfter, DeltaSecondsIncludingFractionsAndSpaces) {
  EXPECT_EQ(parse_retry_after("3", 0), milliseconds(3000));
  EXPECT_EQ(parse_retry_after(" 0.25 ", 0), milliseconds(250));
  EXPECT_EQ(parse_retry_after("0", 0), milliseconds(0));
  EXPECT_FALSE(parse_retry_after("-1", 0));
  EXPECT_FALSE(parse_retry_after("", 0));
  EXPECT_FALSE(parse_retry_after("soon", 0));
}

TEST(RetryAfter, HttpDateRelativeToNowAndNeverNegative) {
  // Wed, 21 Oct 2015 07:28:00 GMT = 1445412480.
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412478.5), milliseconds(1500));
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490.0), milliseconds(0));
  EXPECT_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 CET", 0));
}

TEST(RetryPolicy, RetriesUpToTheConfiguredCount) {
  const RetryPolicy policy(2, milliseconds(200), milliseconds(20000));
  EXPECT_TRUE(policy.may_retry(0));
  EXPECT_TRUE(policy.may_retry(1));
  EXPECT_FALSE(policy.may_retry(2));
  EXPECT_FALSE(RetryPolicy(0, milliseconds(200), milliseconds(1000)).may_retry(0));
}

TEST(RetryPolicy, FullJitterWithinTheDoublingCeiling) {
  const RetryPolicy policy(5, milliseconds(100), milliseconds(60000));
  std::mt19937_64 random(42);
  for (unsigned attempt = 0; attempt < 4; ++attempt) {
    const auto ceiling = milliseconds(100LL << attempt);
    std::set<long long> seen;
    for (int i = 0; i < 200; ++i) {
      const auto wait = policy.wait_before_retry(attempt, std::nullopt, 0, random);
      EXPECT_GE(wait.count(), 0);
      EXPECT_LE(wait, ceiling);
      seen.insert(wait.count());
    }
    EXPECT_GT(seen.size(), 20u) << "not jittered at attempt " << attempt;  // full jitter, not a constant
    EXPECT_GT(*seen.rbegin(), ceiling.count() / 2) << "the ceiling does not double";
  }
}

TEST(RetryPolicy, RetryAfterWinsButIsCapped) {
  const RetryPolicy policy(2, milliseconds(100), milliseconds(5000));
  std::mt19937_64 random(1);
  EXPECT_EQ(policy.wait_before_retry(0, std::string_view("2"), 0, random), milliseconds(2000));
  EXPECT_EQ(policy.wait_before_retry(0, std::string_view("120"), 0, random), milliseconds(5000));
  // An unusable Retry-After falls back to the jittered backoff.
  EXPECT_LE(policy.wait_before_retry(0, std::string_view("later"), 0, random), milliseconds(100));
}

TEST(RetryPolicy, BackoffNeverExceedsTheCapEvenForLateAttempts) {
  const RetryPolicy policy(100, milliseconds(200), milliseconds(300));
  std::mt19937_64 random(7);
  for (unsigned attempt = 0; attempt < 64; ++attempt)
    EXPECT_LE(policy.wait_before_retry(attempt, std::nullopt, 0, random), milliseconds(300));
}

TEST(RetryPolicy, FromConfigReadsTheRoutingKeys) {
  config::RoutingConfig routing;
  routing.retries = 1;
  routing.retry_backoff_ms = 50;
  routing.max_retry_wait_s = 0.5;
  const RetryPolicy policy = RetryPolicy::from(routing);
  EXPECT_TRUE(policy.may_retry(0));
  EXPECT_FALSE(policy.may_retry(1));
  std::mt19937_64 random(3);
  EXPECT_EQ(policy.wait_before_retry(0, std::string_view("9"), 0, random), milliseconds(500));
}

}  // namespace
}  // namespace turnout::resilience
