// Model cooldown (src/resilience/cooldown.hpp): entering after N retryable failures within the
// window, leaving after the duration, probation, resets on success, and what /health and
// /metrics read. Time is injected: every call gets an explicit steady-clock instant.
#include "resilience/cooldown.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace turnout::resilience {
namespace {

using namespace std::chrono_literals;
using Clock = ModelCooldowns::Clock;

const Clock::time_point t0 = Clock::time_point(1000s);  // an arbitrary origin

config::CooldownConfig policy(unsigned failures, double window_s, double duration_s) {
  config::CooldownConfig p;
  p.failures = failures;
  p.window_s = window_s;
  p.duration_s = duration_s;
  return p;
}

// Returns a copy: callers often pass a temporary snapshot.
ModelCooldownState state_of(const std::vector<ModelCooldownState>& states, std::string_view model) {
  for (const auto& s : states) {
    if (s.model == model) return s;
  }
  throw std::runtime_error("model not in snapshot");
}

TEST(Cooldown, StartsOnTheNthFailureWithinTheWindow) {
  ModelCooldowns cooldowns(policy(3, 30, 60), {"a", "b"});
  EXPECT_FALSE(cooldowns.record_failure("a", t0));
  EXPECT_FALSE(cooldowns.record_failure("a", t0 + 10s));
  EXPECT_FALSE(cooldowns.cooling_down("a", t0 + 10s));
  EXPECT_TRUE(cooldowns.record_failure("a", t0 + 20s));
  EXPECT_TRUE(cooldowns.cooling_down("a", t0 + 20s));
  EXPECT_FALSE(cooldowns.cooling_down("b", t0 + 20s)) << "state is per model";
}

TEST(Cooldown, FailuresSpreadWiderThanTheWindowDoNotCount) {
  ModelCooldowns cooldowns(policy(3, 30, 60), {"a"});
  EXPECT_FALSE(cooldowns.record_failure("a", t0));
  EXPECT_FALSE(cooldowns.record_failure("a", t0 + 20s));
  EXPECT_FALSE(cooldowns.record_failure("a", t0 + 31s)) << "3 failures, but over 31 s";
  // The window slides: the last three (20 s, 31 s, 45 s) are within 30 s.
  EXPECT_TRUE(cooldowns.record_failure("a", t0 + 45s));
}

TEST(Cooldown, EndsAfterTheDuration) {
  ModelCooldowns cooldowns(policy(1, 30, 60), {"a"});
  EXPECT_TRUE(cooldowns.record_failure("a", t0));
  EXPECT_TRUE(cooldowns.cooling_down("a", t0 + 59s));
  EXPECT_FALSE(cooldowns.cooling_down("a", t0 + 60s));
}

TEST(Cooldown, FirstFailureAfterTheCooldownStartsAnotherAtOnce) {
  ModelCooldowns cooldowns(policy(3, 30, 60), {"a"});
  for (int i = 0; i < 3; ++i) cooldowns.record_failure("a", t0);
  ASSERT_FALSE(cooldowns.cooling_down("a", t0 + 61s));
  EXPECT_TRUE(cooldowns.record_failure("a", t0 + 61s)) << "on probation: one failure is enough";
  EXPECT_TRUE(cooldowns.cooling_down("a", t0 + 120s));
  EXPECT_FALSE(cooldowns.cooling_down("a", t0 + 121s));
}

TEST(Cooldown, SuccessAfterTheCooldownEndsProbation) {
  ModelCooldowns cooldowns(policy(3, 30, 60), {"a"});
  for (int i = 0; i < 3; ++i) cooldowns.record_failure("a", t0);
  cooldowns.record_success("a");
  EXPECT_FALSE(cooldowns.cooling_down("a", t0 + 1s)) << "an answer ends the cooldown";
  EXPECT_FALSE(cooldowns.record_failure("a", t0 + 61s));
  EXPECT_FALSE(cooldowns.record_failure("a", t0 + 62s));
  EXPECT_TRUE(cooldowns.record_failure("a", t0 + 63s)) << "back to needing 3 failures";
}

TEST(Cooldown, SuccessResetsTheFailureCount) {
  ModelCooldowns cooldowns(policy(3, 30, 60), {"a"});
  cooldowns.record_failure("a", t0);
  cooldowns.record_failure("a", t0 + 1s);
  cooldowns.record_success("a");
  EXPECT_FALSE(cooldowns.record_failure("a", t0 + 2s));
  EXPECT_FALSE(cooldowns.record_failure("a", t0 + 3s));
  EXPECT_FALSE(cooldowns.cooling_down("a", t0 + 3s));
  EXPECT_EQ(state_of(cooldowns.snapshot(t0 + 3s), "a").consecutive_failures, 2u);
}

TEST(Cooldown, FailuresDuringACooldownDoNotExtendIt) {
  ModelCooldowns cooldowns(policy(1, 30, 60), {"a"});
  EXPECT_TRUE(cooldowns.record_failure("a", t0));
  EXPECT_FALSE(cooldowns.record_failure("a", t0 + 30s)) << "a call already under way when it started";
  EXPECT_FALSE(cooldowns.cooling_down("a", t0 + 60s));
}

TEST(Cooldown, ZeroFailuresDisablesItButFailuresAreStillCounted) {
  ModelCooldowns cooldowns(policy(0, 30, 60), {"a"});
  EXPECT_FALSE(cooldowns.enabled());
  for (int i = 0; i < 50; ++i) EXPECT_FALSE(cooldowns.record_failure("a", t0));
  EXPECT_FALSE(cooldowns.cooling_down("a", t0));
  const auto& a = state_of(cooldowns.snapshot(t0), "a");
  EXPECT_FALSE(a.cooling_down);
  EXPECT_EQ(a.failures_total, 50u);
}

TEST(Cooldown, UnconfiguredModelsAreNotTracked) {
  ModelCooldowns cooldowns(policy(1, 30, 60), {"a"});
  EXPECT_FALSE(cooldowns.record_failure("client-chosen", t0));
  EXPECT_FALSE(cooldowns.cooling_down("client-chosen", t0));
  cooldowns.record_success("client-chosen");
  EXPECT_EQ(cooldowns.snapshot(t0).size(), 1u);
}

TEST(Cooldown, SnapshotShowsEveryModelWithItsCooldownAndCounters) {
  ModelCooldowns cooldowns(policy(2, 30, 60), {"a", "b"});
  cooldowns.record_failure("a", t0);
  cooldowns.record_failure("a", t0 + 5s);
  cooldowns.record_failure("b", t0 + 5s);
  const auto states = cooldowns.snapshot(t0 + 10s);
  ASSERT_EQ(states.size(), 2u);
  const auto& a = state_of(states, "a");
  EXPECT_TRUE(a.cooling_down);
  EXPECT_EQ(a.until, t0 + 65s);
  EXPECT_EQ(a.consecutive_failures, 2u);
  EXPECT_EQ(a.failures_total, 2u);
  const auto& b = state_of(states, "b");
  EXPECT_FALSE(b.cooling_down);
  EXPECT_EQ(b.failures_total, 1u);

  cooldowns.record_success("a");
  const auto& after = state_of(cooldowns.snapshot(t0 + 11s), "a");
  EXPECT_FALSE(after.cooling_down);
  EXPECT_EQ(after.consecutive_failures, 0u);
  EXPECT_EQ(after.failures_total, 2u) << "the counter is monotonic";
}

}  // namespace
}  // namespace turnout::resilience
