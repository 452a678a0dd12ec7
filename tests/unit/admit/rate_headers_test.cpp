// Requests-per-minute headers and refusals (admit/rate_headers.hpp).
#include "admit/rate_headers.hpp"

#include <gtest/gtest.h>

namespace turnout::admit {
namespace {

TEST(OpenAiDuration, MatchesOpenAiSyntax) {
  EXPECT_EQ(openai_duration(0), "0ms");
  EXPECT_EQ(openai_duration(20), "20ms");
  EXPECT_EQ(openai_duration(1000), "1s");
  EXPECT_EQ(openai_duration(1500), "1.5s");
  EXPECT_EQ(openai_duration(59'999), "59.999s");
  EXPECT_EQ(openai_duration(60'000), "1m0s");
  EXPECT_EQ(openai_duration(360'000), "6m0s");
  EXPECT_EQ(openai_duration(3'723'000), "1h2m3s");
  EXPECT_EQ(openai_duration(-5), "0ms");
}

TEST(RateHeaders, CountThisRequestOnlyWhenAdmitted) {
  const governance::RequestWindow window{"key:abc", 60, 10, 120'000};
  const auto admitted = request_limit_headers(window, true, 90'000);
  ASSERT_EQ(admitted.size(), 3u);
  EXPECT_EQ(admitted[0], (Header{"x-ratelimit-limit-requests", "60"}));
  EXPECT_EQ(admitted[1], (Header{"x-ratelimit-remaining-requests", "49"}));
  EXPECT_EQ(admitted[2], (Header{"x-ratelimit-reset-requests", "30s"}));
  EXPECT_EQ(request_limit_headers(window, false, 90'000)[1].second, "50");
}

TEST(RateRefusal, SaysLimitUsedRequestedAndWhenToRetry) {
  KeyGrant grant;
  grant.key.id = "0123456789abcdef";
  const Refusal refusal = rate_refusal(grant, governance::RequestWindow{"key:0123456789abcdef", 5, 5, 61'500}, 60'000);
  EXPECT_EQ(refusal.status, 429u);
  EXPECT_EQ(refusal.code, "rate_limit_exceeded");
  EXPECT_EQ(refusal.type, "requests");
  EXPECT_NE(refusal.message.find("Limit 5, Used 5, Requested 1"), std::string::npos) << refusal.message;
  EXPECT_NE(refusal.message.find("0123456789abcdef"), std::string::npos);
  const auto header = [&](std::string_view name) {
    for (const auto& [n, v] : refusal.headers)
      if (n == name) return v;
    return std::string("(missing)");
  };
  EXPECT_EQ(header("retry-after"), "2");
  EXPECT_EQ(header("retry-after-ms"), "1500");
  EXPECT_EQ(header("x-ratelimit-remaining-requests"), "0");
  EXPECT_EQ(header("x-ratelimit-reset-requests"), "1.5s");
}

}  // namespace
}  // namespace turnout::admit
