// The admit stage (issue 17, items 1, 3, 6, 7) with an injected clock: authentication
// from the cache (revocation seen after the TTL), allow-lists, expiry, the hold amount
// (exact prompt count, maximum output, n, dearest fallback) and the refusals clients read.
#include "admit/admission.hpp"
#include "admit/hold_sweeper.hpp"
#include "admit/hold_amount.hpp"
#include "admit/lease_pool.hpp"

#include "sqlite_store_test.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace {

using namespace turnout;
using namespace turnout::admit;
using namespace turnout::governance;

constexpr std::int64_t kCent = 10'000'000'000;  // $0.01 in pico-dollars

CandidateCost priced(std::string model, std::int64_t input_pico, std::int64_t output_pico, std::uint64_t prompt,
                     std::uint64_t context, std::optional<std::uint64_t> max_output) {
  CandidateCost c;
  c.model = std::move(model);
  c.rates.input_pico_per_token = input_pico;
  c.rates.output_pico_per_token = output_pico;
  c.prompt_tokens = prompt;
  c.context_window = context;
  c.max_output_tokens = max_output;
  return c;
}

TEST(HoldAmount, InputTimesPromptPlusOutputTimesMaximumTimesN) {
  CallCost cost;
  cost.candidates.push_back(priced("m", 100, 400, 1000, 0, 4096));
  cost.requested_output_tokens = 50;
  cost.choices = 3;
  EXPECT_EQ(*hold_amount(cost, false), 100 * 1000 + 400 * 50 * 3);
  // No request limit: the model's output limit, clamped to what the context leaves.
  cost.requested_output_tokens = 0;
  cost.choices = 1;
  EXPECT_EQ(*hold_amount(cost, false), 100 * 1000 + 400 * 4096);
  cost.candidates[0].context_window = 3000;
  EXPECT_EQ(*hold_amount(cost, false), 100 * 1000 + 400 * 2000);
  // A request limit above the model's is clamped to it.
  cost.candidates[0].context_window = 0;
  cost.requested_output_tokens = 100000;
  EXPECT_EQ(*hold_amount(cost, false), 100 * 1000 + 400 * 4096);
}

TEST(HoldAmount, ClampFindsTheLargestOutputWhoseHoldFitsEveryCandidate) {
  CallCost cost;
  cost.candidates.push_back(priced("cheap", 100, 400, 1000, 0, 4096));
  cost.candidates.push_back(priced("dear", 300, 700, 1000, 0, 4096));
  cost.requested_output_tokens = 1000;
  cost.choices = 2;
  // The dearer candidate decides: 300 × 1000 + 700 × m × 2 ≤ room.
  const std::int64_t room = 300 * 1000 + 700 * 37 * 2 + 1399;  // one pico short of m = 38
  EXPECT_EQ(clamped_output_tokens(cost, room, false), 37u);
  EXPECT_EQ(clamped_output_tokens(cost, room + 1, false), 38u);
  // Never above what the call already allows; nothing when not one token fits.
  EXPECT_EQ(clamped_output_tokens(cost, INT64_MAX, false), 1000u);
  EXPECT_EQ(clamped_output_tokens(cost, 300 * 1000 + 700 * 2 - 1, false), std::nullopt);
  cost.candidates.push_back(priced("unpriced", 0, 0, 1000, 0, 4096));
  cost.candidates.back().rates = {};
  EXPECT_EQ(clamped_output_tokens(cost, room, false), std::nullopt);
}

TEST(HoldAmount, TheDearestCandidateIsHeldSoAFallbackIsCovered) {
  CallCost cost;
  cost.candidates.push_back(priced("cheap", 1, 2, 100, 0, 100));
  cost.candidates.push_back(priced("dear", 10, 20, 100, 0, 100));
  EXPECT_EQ(*hold_amount(cost, false), 10 * 100 + 20 * 100);
}

TEST(HoldAmount, UnpricedAndUnboundedAreRefusedUnlessAllowed) {
  CallCost cost;
  CandidateCost unpriced;
  unpriced.model = "mystery";
  unpriced.max_output_tokens = 10;
  cost.candidates.push_back(unpriced);
  ASSERT_FALSE(hold_amount(cost, false));
  EXPECT_EQ(hold_amount(cost, false).error().problem, HoldProblem::unpriced);
  EXPECT_EQ(*hold_amount(cost, true), 0);
  CallCost unbounded;
  unbounded.candidates.push_back(priced("open", 1, 1, 10, 0, std::nullopt));
  EXPECT_EQ(hold_amount(unbounded, false).error().problem, HoldProblem::unbounded_output);
  unbounded.requested_output_tokens = 5;
  EXPECT_EQ(*hold_amount(unbounded, false), 10 + 5);
}

class AdmissionTest : public turnout::test::SqliteStoreTest {
 protected:
  AdmissionTest() : SqliteStoreTest("turnout-admit-") {}
  void TearDown() override {
    admission_.reset();
    SqliteStoreTest::TearDown();
  }
  void start(std::chrono::milliseconds ttl) {
    AdmitSettings settings;
    settings.key_cache_ttl = ttl;
    admission_ = std::make_unique<Admission>(*store_, settings, [this] { return now_ms_; });
  }
  CreatedKey create(Fields fields) {
    if (!fields.name) fields.name = "app";
    auto created = store_->create_key(fields, "test", now_ms_);
    EXPECT_TRUE(created);
    return *created;
  }
  CallCost one_model(std::string model, std::int64_t per_token) {
    CallCost cost;
    cost.candidates.push_back(priced(std::move(model), per_token, per_token, 10, 0, 10));
    return cost;
  }

  std::unique_ptr<Admission> admission_;
  std::int64_t now_ms_ = 1'800'000'000'000;
};

TEST_F(AdmissionTest, AValidKeyIsAdmittedAndAWrongSecretIsNot) {
  start(std::chrono::seconds(60));
  const CreatedKey key = create({});
  auto ok = admission_->authenticate(key.key, false);
  ASSERT_TRUE(ok && ok->grant);
  EXPECT_EQ(ok->grant->key.id, key.record.id);
  std::string wrong = key.key;
  wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
  auto refused = admission_->authenticate(wrong, false);
  ASSERT_TRUE(refused && refused->refusal);
  EXPECT_EQ(refused->refusal->status, 401U);
  EXPECT_EQ(refused->refusal->code, "invalid_api_key");
  // The message names the public id, never the secret.
  EXPECT_NE(refused->refusal->message.find(key.record.id), std::string::npos);
  EXPECT_EQ(refused->refusal->message.find(wrong.substr(20)), std::string::npos);
}

TEST_F(AdmissionTest, CacheHitsNeedNoDatabaseAndRevocationIsSeenAfterTheTtl) {
  start(std::chrono::milliseconds(50));
  const CreatedKey key = create({});
  EXPECT_FALSE(admission_->authenticate(key.key, true));  // nothing cached yet: a miss
  ASSERT_TRUE(admission_->authenticate(key.key, false)->grant);
  ASSERT_TRUE(admission_->authenticate(key.key, true));  // now a hit, from memory
  ASSERT_TRUE(store_->revoke_key(key.record.id, "test", now_ms_));
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  auto after = admission_->authenticate(key.key, false);
  ASSERT_TRUE(after && after->refusal);
  EXPECT_NE(after->refusal->message.find("revoked"), std::string::npos);
}

TEST_F(AdmissionTest, ExpiredKeysAreRefusedByTheInjectedClock) {
  start(std::chrono::seconds(60));
  Fields fields;
  fields.expires_at_ms.value = now_ms_ + 1000;
  const CreatedKey key = create(fields);
  EXPECT_TRUE(admission_->authenticate(key.key, false)->grant);
  now_ms_ += 1000;
  auto expired = admission_->authenticate(key.key, false);
  ASSERT_TRUE(expired->refusal);
  EXPECT_NE(expired->refusal->message.find("expired"), std::string::npos);
}

TEST_F(AdmissionTest, ModelsOutsideTheAllowListAre403) {
  start(std::chrono::seconds(60));
  Fields fields;
  fields.models.value = std::vector<std::string>{"gpt-4o-mini"};
  const CreatedKey key = create(fields);
  const auto grant = admission_->authenticate(key.key, false)->grant;
  auto refused = admission_->admit(*grant, one_model("gpt-4o", 1), std::chrono::seconds(60));
  ASSERT_TRUE(std::holds_alternative<Refusal>(refused));
  EXPECT_EQ(std::get<Refusal>(refused).status, 403U);
  EXPECT_EQ(std::get<Refusal>(refused).code, "model_not_allowed");
  EXPECT_TRUE(std::holds_alternative<Admitted>(admission_->admit(*grant, one_model("gpt-4o-mini", 1),
                                                                 std::chrono::seconds(60))));
}

TEST_F(AdmissionTest, BudgetRefusalTellsSdksNotToRetryAndWhenItResets) {
  start(std::chrono::seconds(60));
  Fields fields;
  fields.budget_pico.value = kCent;
  fields.budget_period = BudgetPeriod::day;
  const CreatedKey key = create(fields);
  const auto grant = admission_->authenticate(key.key, false)->grant;
  // 20 tokens at 0.5 cent each: $0.10, ten times the budget.
  auto refused = admission_->admit(*grant, one_model("m", kCent / 2), std::chrono::seconds(60));
  ASSERT_TRUE(std::holds_alternative<Refusal>(refused));
  const Refusal& r = std::get<Refusal>(refused);
  EXPECT_EQ(r.status, 429U);
  EXPECT_EQ(r.code, "insufficient_quota");
  const auto header = [&](std::string_view name) -> std::string {
    for (const auto& [n, v] : r.headers)
      if (n == name) return v;
    return "";
  };
  EXPECT_EQ(header("x-should-retry"), "false");
  EXPECT_FALSE(header("retry-after").empty());
  EXPECT_EQ(header("x-turnout-budget-remaining-usd"), "0.01");
  // What fits is admitted, with a hold to settle and the remaining budget in a header.
  auto admitted = admission_->admit(*grant, one_model("m", kCent / 40), std::chrono::seconds(60));
  ASSERT_TRUE(std::holds_alternative<Admitted>(admitted));
  EXPECT_FALSE(std::get<Admitted>(admitted).hold_id.empty());
  EXPECT_EQ(std::get<Admitted>(admitted).headers.at(0).second, "0.005");
}

// Lease mode: a key revoked after this replica cached it (another replica's admin API, the
// notification not here yet) takes no new lease: the call is refused as a revoked key,
// nothing is reserved, and the cache forgets the key.
TEST_F(AdmissionTest, ALeaseRenewalOnARevokedKeyIsRefusedAsRevoked) {
  start(std::chrono::seconds(60));
  LeasePool pool(*store_, LeaseSettings{kCent, std::chrono::milliseconds(30'000), std::chrono::milliseconds(5'000)});
  admission_->use_leases(pool);
  Fields fields;
  fields.budget_pico.value = kCent;
  const CreatedKey key = create(fields);
  const auto grant = admission_->authenticate(key.key, false)->grant;
  ASSERT_TRUE(grant);
  ASSERT_TRUE(store_->revoke_key(key.record.id, "test", now_ms_));
  ASSERT_TRUE(admission_->authenticate(key.key, true)->grant) << "the replica's cache still admits it";

  auto refused = admission_->admit(*grant, one_model("m", kCent / 40), std::chrono::seconds(60));
  ASSERT_TRUE(std::holds_alternative<Refusal>(refused));
  EXPECT_EQ(std::get<Refusal>(refused).status, 401U);
  EXPECT_NE(std::get<Refusal>(refused).message.find("revoked"), std::string::npos);
  auto usage = store_->usage(governance::key_scope(key.record.id), key.record.limits, now_ms_);
  ASSERT_TRUE(usage);
  EXPECT_EQ(usage->held_pico, 0);
  EXPECT_FALSE(admission_->authenticate(key.key, true)) << "the revoked key is no longer cached";
}

TEST_F(AdmissionTest, ClampHoldsWhatFitsAndNamesTheInjectedLimit) {
  AdmitSettings settings;
  settings.clamp_output = true;
  admission_ = std::make_unique<Admission>(*store_, settings, [this] { return now_ms_; });
  Fields fields;
  fields.budget_pico.value = kCent;
  const CreatedKey key = create(fields);
  const auto grant = admission_->authenticate(key.key, false)->grant;
  CallCost cost;  // 10 prompt tokens at 1e8 pico, output at 1e9 pico per token, up to 100
  cost.candidates.push_back(priced("m", 100'000'000, 1'000'000'000, 10, 0, 100));
  cost.output_clampable = true;
  // Room $0.01 = 1e10: 1e9 + 1e9 × m ≤ 1e10, so m = 9.
  auto clamped = admission_->admit(*grant, cost, std::chrono::seconds(60));
  ASSERT_TRUE(std::holds_alternative<Admitted>(clamped));
  const Admitted& admitted = std::get<Admitted>(clamped);
  EXPECT_EQ(admitted.max_completion_tokens, 9u);
  EXPECT_FALSE(admitted.hold_id.empty());
  const auto header = [&](std::string_view name) -> std::string {
    for (const auto& [n, v] : admitted.headers)
      if (n == name) return v;
    return "";
  };
  EXPECT_EQ(header("x-turnout-clamped-max-completion-tokens"), "9");
  EXPECT_EQ(header("x-turnout-budget-remaining-usd"), "0");
  // Nothing left: not even one output token fits, so refused as without clamp.
  auto refused = admission_->admit(*grant, cost, std::chrono::seconds(60));
  ASSERT_TRUE(std::holds_alternative<Refusal>(refused));
  EXPECT_EQ(std::get<Refusal>(refused).code, "insufficient_quota");
  // A call that fits as asked is not clamped.
  Fields roomy;
  roomy.budget_pico.value = 100 * kCent;
  const CreatedKey other = create(roomy);
  auto whole = admission_->admit(*admission_->authenticate(other.key, false)->grant, cost, std::chrono::seconds(60));
  ASSERT_TRUE(std::holds_alternative<Admitted>(whole));
  EXPECT_FALSE(std::get<Admitted>(whole).max_completion_tokens);
}

TEST_F(AdmissionTest, TokensPerMinuteReserveTheMostACallCanUseAndSayWhatIsLeft) {
  start(std::chrono::seconds(60));
  Fields fields;
  fields.tpm.value = 50;
  const CreatedKey key = create(fields);
  const auto grant = admission_->authenticate(key.key, false)->grant;
  const auto header = [](const std::vector<Header>& headers, std::string_view name) -> std::string {
    for (const auto& [n, v] : headers)
      if (n == name) return v;
    return "";
  };
  // 10 prompt tokens + at most 10 out: 20 reserved.
  auto first = admission_->admit(*grant, one_model("m", 1), std::chrono::seconds(60));
  ASSERT_TRUE(std::holds_alternative<Admitted>(first));
  const Admitted& admitted = std::get<Admitted>(first);
  EXPECT_FALSE(admitted.hold_id.empty());  // the reservation is settled with the record
  EXPECT_EQ(header(admitted.headers, "x-ratelimit-limit-tokens"), "50");
  EXPECT_EQ(header(admitted.headers, "x-ratelimit-remaining-tokens"), "30");
  EXPECT_EQ(header(admitted.headers, "x-ratelimit-reset-tokens"), "1m0s");  // a new minute starts
  ASSERT_TRUE(std::holds_alternative<Admitted>(admission_->admit(*grant, one_model("m", 1), std::chrono::seconds(60))));
  auto refused = admission_->admit(*grant, one_model("m", 1), std::chrono::seconds(60));
  ASSERT_TRUE(std::holds_alternative<Refusal>(refused));
  const Refusal& r = std::get<Refusal>(refused);
  EXPECT_EQ(r.status, 429U);
  EXPECT_EQ(r.code, "rate_limit_exceeded");
  EXPECT_EQ(r.type, "tokens");
  EXPECT_NE(r.message.find("Limit 50, Used 40, Requested 20"), std::string::npos) << r.message;
  EXPECT_EQ(header(r.headers, "retry-after"), "60");
  EXPECT_EQ(header(r.headers, "retry-after-ms"), "60000");
  EXPECT_EQ(header(r.headers, "x-ratelimit-remaining-tokens"), "10");
}

TEST_F(AdmissionTest, ConcurrentRequestsBeyondMaxParallelAreRefused) {
  start(std::chrono::seconds(60));
  Fields fields;
  fields.max_parallel.value = 1;
  const CreatedKey key = create(fields);
  const auto grant = admission_->authenticate(key.key, false)->grant;
  auto first = admission_->admit(*grant, one_model("m", 1), std::chrono::seconds(60));
  ASSERT_TRUE(std::holds_alternative<Admitted>(first));
  EXPECT_FALSE(std::get<Admitted>(first).hold_id.empty());  // the slot is the hold row
  auto refused = admission_->admit(*grant, one_model("m", 1), std::chrono::seconds(60));
  ASSERT_TRUE(std::holds_alternative<Refusal>(refused));
  EXPECT_EQ(std::get<Refusal>(refused).code, "rate_limit_exceeded");
  EXPECT_NE(std::get<Refusal>(refused).message.find("concurrent requests"), std::string::npos);
  EXPECT_NE(std::get<Refusal>(refused).message.find("Limit 1, Used 1, Requested 1"), std::string::npos);
}

TEST_F(AdmissionTest, TheSweeperChargesAnExpiredHoldWithNoCallOnItsKey) {
  start(std::chrono::seconds(60));
  Fields fields;
  fields.budget_pico.value = kCent;
  const CreatedKey key = create(fields);
  const auto grant = admission_->authenticate(key.key, false)->grant;
  // 10 + 10 tokens at 100 pico: a hold of 2000 pico that no record will ever settle.
  ASSERT_TRUE(std::holds_alternative<Admitted>(admission_->admit(*grant, one_model("m", 100), std::chrono::seconds(1))));
  std::atomic<std::int64_t> clock{now_ms_};
  std::atomic<std::uint64_t> logged{0};
  HoldSweeper sweeper(*store_, std::chrono::milliseconds(10), [&](std::uint64_t n) { logged += n; },
                      [&] { return clock.load(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(sweeper.swept(), 0u);  // not yet expired
  clock += 1000;
  for (int i = 0; i < 200 && sweeper.swept() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(sweeper.swept(), 1u);
  EXPECT_EQ(logged.load(), 1u);
  auto usage = store_->usage(governance::key_scope(key.record.id), key.record.limits, now_ms_);
  ASSERT_TRUE(usage);
  EXPECT_EQ(usage->spent_pico, 2000);
  EXPECT_EQ(usage->held_pico, 0);
}

TEST_F(AdmissionTest, RefusalsAreCountedByKeyTeamAndReasonWithBoundedLabels) {
  start(std::chrono::seconds(60));
  Fields fields;
  fields.models.value = std::vector<std::string>{"allowed"};
  fields.max_parallel.value = 1;
  const CreatedKey key = create(fields);
  const auto grant = admission_->authenticate(key.key, false)->grant;
  EXPECT_TRUE(std::holds_alternative<Refusal>(admission_->admit(*grant, one_model("other", 1), std::chrono::seconds(60))));
  EXPECT_TRUE(std::holds_alternative<Admitted>(admission_->admit(*grant, one_model("allowed", 1), std::chrono::seconds(60))));
  EXPECT_TRUE(std::holds_alternative<Refusal>(admission_->admit(*grant, one_model("allowed", 1), std::chrono::seconds(60))));
  EXPECT_TRUE(std::holds_alternative<Refusal>(admission_->admit(*grant, one_model("allowed", 1), std::chrono::seconds(60))));
  const auto counts = admission_->refusals().snapshot();
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts[0].key_id, key.record.id);
  EXPECT_EQ(counts[0].reason, "max_parallel");
  EXPECT_EQ(counts[0].count, 2u);
  EXPECT_EQ(counts[1].reason, "model_not_allowed");
  EXPECT_EQ(counts[1].count, 1u);

  RefusalCounter capped(2);
  KeyGrant other;
  for (const char* id : {"a", "b", "c", "d"}) {
    other.key.id = id;
    capped.add(other, "rpm");
  }
  const auto bounded = capped.snapshot();
  ASSERT_EQ(bounded.size(), 3u);  // a, b, then everything else as "other"
  EXPECT_EQ(bounded.back().key_id, "other");
  EXPECT_EQ(bounded.back().count, 2u);
}

}  // namespace
