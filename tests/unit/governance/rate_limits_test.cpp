// Tokens per minute and concurrent requests on SQLite (issue 17, item 5): tokens reserved
// from the prompt count + maximum output in the hold's transaction and settled to the
// actual use by the ledger writer's batch; a slot per live hold, freed by settling or by
// expiry (a crashed replica's call), never leaked.
#include "governance/store.hpp"
#include "ledger/backend.hpp"
#include "ledger/sqlite/db.hpp"

#include "sqlite_store_test.hpp"

#include <gtest/gtest.h>


namespace {

using namespace turnout;
using namespace turnout::governance;

class RateLimits : public turnout::test::SqliteStoreTest {
 protected:
  RateLimits() : SqliteStoreTest("turnout-rates-") {}

  KeyRecord make_key(const Fields& limits) {
    Fields fields = limits;
    fields.name = "app";
    auto created = store_->create_key(fields, "test", now_);
    EXPECT_TRUE(created) << (created ? "" : created.error().message);
    return created->record;
  }

  HoldOutcome hold(const KeyRecord& key, const TeamRecord* team, std::uint64_t tokens, const std::string& id,
                   std::int64_t amount_pico = 0) {
    HoldRequest r;
    r.amount_pico = amount_pico;
    r.hold_id = id;
    r.key = &key;
    r.team = team;
    r.tokens = tokens;
    r.now_ms = now_;
    r.expires_at_ms = now_ + 10'000;
    auto outcome = store_->hold(r);
    EXPECT_TRUE(outcome) << (outcome ? "" : outcome.error().message);
    return *outcome;
  }

  // Stores the call's record through the ledger's own writer, which settles its hold.
  void settle(const std::string& hold_id, std::uint64_t prompt, std::uint64_t completion,
              std::int64_t cost_pico = 0) {
    ledger::KeyedRecord keyed;
    keyed.key = "rec-" + hold_id;
    keyed.record.id = "req";
    keyed.record.hold_id = hold_id;
    keyed.record.usage.prompt_tokens = prompt;
    keyed.record.usage.completion_tokens = completion;
    keyed.record.cost = pricing::Money{cost_pico};
    dir_.write_record(keyed);
  }

  std::uint64_t tokens_this_minute(const std::string& scope, const Limits& limits) {
    auto usage = store_->usage(scope, limits, now_);
    EXPECT_TRUE(usage);
    return usage->tokens_this_minute;
  }

  std::int64_t now_ = 1'796'558'400'000 + 5'000;  // 2026-12-06 12:00:05 UTC
};

TEST_F(RateLimits, TokensAreReservedThenSettledToTheActualUse) {
  Fields limits;
  limits.tpm.value = 1000;
  const KeyRecord key = make_key(limits);
  const HoldOutcome first = hold(key, nullptr, 600, "aa01");
  EXPECT_FALSE(first.rate_refused);
  ASSERT_TRUE(first.tokens);
  EXPECT_EQ(first.tokens->used, 0u);
  EXPECT_EQ(first.tokens->requested, 600u);
  EXPECT_EQ(tokens_this_minute(key_scope(key.id), key.limits), 600u);

  const HoldOutcome second = hold(key, nullptr, 500, "aa02");
  ASSERT_TRUE(second.rate_refused);
  EXPECT_EQ(second.rate_refused->kind, RateKind::tokens);
  EXPECT_EQ(second.rate_refused->limit, 1000u);
  EXPECT_EQ(second.rate_refused->used, 600u);
  EXPECT_EQ(second.rate_refused->requested, 500u);
  EXPECT_EQ(tokens_this_minute(key_scope(key.id), key.limits), 600u);  // a refusal reserves nothing

  settle("aa01", 80, 20);  // the call used 100 of its 600
  EXPECT_EQ(tokens_this_minute(key_scope(key.id), key.limits), 100u);
  settle("aa01", 80, 20);  // settled once only
  EXPECT_EQ(tokens_this_minute(key_scope(key.id), key.limits), 100u);
  EXPECT_FALSE(hold(key, nullptr, 900, "aa03").rate_refused);  // exactly the rest fits
  EXPECT_TRUE(hold(key, nullptr, 1, "aa04").rate_refused);

  now_ += 60'000;  // a new minute starts empty
  EXPECT_FALSE(hold(key, nullptr, 1000, "aa05").rate_refused);
}

TEST_F(RateLimits, ATeamTokenLimitIsSharedByItsKeys) {
  Fields team_limits;
  team_limits.tpm.value = 1000;
  auto team = store_->create_team("research", team_limits, "test", now_);
  ASSERT_TRUE(team);
  Fields in_team;
  in_team.team.value = "research";
  const KeyRecord first = make_key(in_team);
  const KeyRecord second = make_key(in_team);
  EXPECT_FALSE(hold(first, &*team, 700, "bb01").rate_refused);
  const HoldOutcome refused = hold(second, &*team, 400, "bb02");
  ASSERT_TRUE(refused.rate_refused);
  EXPECT_EQ(refused.rate_refused->scope, "team:research");
  EXPECT_EQ(refused.rate_refused->used, 700u);
}

TEST_F(RateLimits, ParallelSlotsAreLiveHoldsFreedBySettlingOrExpiry) {
  Fields limits;
  limits.max_parallel.value = 2;
  const KeyRecord key = make_key(limits);
  EXPECT_FALSE(hold(key, nullptr, 10, "cc01").rate_refused);
  EXPECT_FALSE(hold(key, nullptr, 10, "cc02").rate_refused);
  const HoldOutcome full = hold(key, nullptr, 10, "cc03");
  ASSERT_TRUE(full.rate_refused);
  EXPECT_EQ(full.rate_refused->kind, RateKind::parallel);
  EXPECT_EQ(full.rate_refused->limit, 2u);
  EXPECT_EQ(full.rate_refused->used, 2u);

  settle("cc01", 5, 5);  // a finished call (any outcome: its record settles it) frees its slot
  EXPECT_FALSE(hold(key, nullptr, 10, "cc04").rate_refused);
  EXPECT_TRUE(hold(key, nullptr, 10, "cc05").rate_refused);

  now_ += 10'000;  // both live calls' replica died: their holds expire and free the slots
  EXPECT_FALSE(hold(key, nullptr, 10, "cc06").rate_refused);
  EXPECT_FALSE(hold(key, nullptr, 10, "cc07").rate_refused);
  EXPECT_TRUE(hold(key, nullptr, 10, "cc08").rate_refused);
}

TEST_F(RateLimits, ATeamSlotLimitCountsEveryKeyOfTheTeam) {
  Fields team_limits;
  team_limits.max_parallel.value = 1;
  auto team = store_->create_team("ops", team_limits, "test", now_);
  ASSERT_TRUE(team);
  Fields in_team;
  in_team.team.value = "ops";
  const KeyRecord first = make_key(in_team);
  const KeyRecord second = make_key(in_team);
  EXPECT_FALSE(hold(first, &*team, 1, "dd01").rate_refused);
  const HoldOutcome refused = hold(second, &*team, 1, "dd02");
  ASSERT_TRUE(refused.rate_refused);
  EXPECT_EQ(refused.rate_refused->scope, "team:ops");
}

TEST_F(RateLimits, ActivityCountsLiveHoldsExpiriesAndOverrunsPerKeyAndTeam) {
  Fields team_limits;
  team_limits.budget_pico.value = 1000;
  auto team = store_->create_team("ops", team_limits, "test", now_);
  ASSERT_TRUE(team);
  Fields in_team;
  in_team.team.value = "ops";
  in_team.budget_pico.value = 1000;
  const KeyRecord key = make_key(in_team);
  ASSERT_FALSE(hold(key, &*team, 1, "ee01", 10).refused);
  ASSERT_FALSE(hold(key, &*team, 1, "ee02", 10).refused);
  ASSERT_FALSE(hold(key, &*team, 1, "ee03", 10).refused);
  settle("ee01", 1, 1, 15);  // cost more than its hold: an overrun of 5
  now_ += 10'000;
  // "ee02" and "ee03" expire; a periodic sweep charges them with no call on the key.
  auto swept = store_->sweep_expired(now_);
  ASSERT_TRUE(swept);
  EXPECT_EQ(*swept, 2u);
  ASSERT_FALSE(hold(key, &*team, 1, "ee04", 10).refused);  // live
  auto activity = store_->activity(10);
  ASSERT_TRUE(activity);
  ASSERT_EQ(activity->size(), 2u);
  for (const ScopeActivity& scope : *activity) {
    EXPECT_TRUE(scope.scope == key_scope(key.id) || scope.scope == "team:ops") << scope.scope;
    EXPECT_EQ(scope.live_holds, 1u);
    EXPECT_EQ(scope.held_pico, 10);
    EXPECT_EQ(scope.expired_holds, 2u);
    EXPECT_EQ(scope.expired_pico, 20);
    EXPECT_EQ(scope.overruns, 1u);
    EXPECT_EQ(scope.overrun_pico, 5);
  }
  auto bounded = store_->activity(1);  // the label sets /metrics shows are capped
  ASSERT_TRUE(bounded);
  EXPECT_EQ(bounded->size(), 1u);
}

// A window's counts are never read as more than there are: a negative stored count (an
// over-settled window) reads as 0 for requests as for tokens, not as 2^64 - 1.
TEST_F(RateLimits, ANegativeStoredCountReadsAsZero) {
  const std::string scope = key_scope(make_key(Fields{}).id);
  {
    auto db = ledger::sqlite::Database::open(dir_.ledger_file().string());
    ASSERT_TRUE(db) << db.error().message;
    const std::int64_t window = now_ - now_ % 60'000;
    ASSERT_TRUE(db->exec("INSERT INTO gov_rates (scope, window_start_ms, requests, tokens) VALUES ('" + scope + "', " +
                         std::to_string(window) + ", -1, -5)"));
  }
  auto usage = store_->usage(scope, Limits{}, now_);
  ASSERT_TRUE(usage) << usage.error().message;
  EXPECT_EQ(usage->requests_this_minute, 0u);
  EXPECT_EQ(usage->tokens_this_minute, 0u);
}

}  // namespace
