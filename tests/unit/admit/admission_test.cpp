// The admit stage (issue 17, items 1, 3, 6, 7) with an injected clock: authentication
// from the cache (revocation seen after the TTL), allow-lists, expiry, the hold amount
// (exact prompt count, maximum output, n, dearest fallback) and the refusals clients read.
#include "admit/admission.hpp"
#include "admit/hold_amount.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

namespace {

using namespace turnout;
using namespace turnout::admit;
using namespace turnout::governance;
namespace fs = std::filesystem;

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

class AdmissionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("turnout-admit-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto store = GovernanceStore::open("sqlite:" + (dir_ / "ledger.db").string());
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
  }
  void TearDown() override {
    admission_.reset();
    store_.reset();
    fs::remove_all(dir_);
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

  fs::path dir_;
  std::unique_ptr<GovernanceStore> store_;
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

}  // namespace
