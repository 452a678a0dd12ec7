// Exact money: price parsing, formatting, per-call cost, sums, and the built-in table.
#include "pricing/pricing.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace turnout::pricing {
namespace {

// $X per 1,000 tokens is X/1000 dollars per token, and $1 is 1e12 pico-dollars, so a price
// per 1k of X is X * 1e9 pico-dollars per token.
constexpr std::int64_t kPicoPerTokenForOneDollarPer1k = 1'000'000'000;

std::int64_t price(std::string_view text) {
  auto parsed = parse_price_per_1k(text);
  EXPECT_TRUE(parsed) << text << ": " << (parsed ? "" : parsed.error().message);
  return parsed ? *parsed : -1;
}

std::string price_error(std::string_view text) {
  auto parsed = parse_price_per_1k(text);
  EXPECT_FALSE(parsed) << text << " parsed as " << (parsed ? *parsed : 0);
  return parsed ? std::string() : parsed.error().message;
}

TEST(ParsePrice, PlainDecimalsAreExact) {
  EXPECT_EQ(price("1"), kPicoPerTokenForOneDollarPer1k);
  EXPECT_EQ(price("0.0025"), kPicoPerTokenForOneDollarPer1k / 400);  // 1/400 of a dollar
  EXPECT_EQ(price("0.00015"), 150'000);
  EXPECT_EQ(price("0.01"), 10'000'000);
  EXPECT_EQ(price("0"), 0);
  EXPECT_EQ(price("0.0"), 0);
  EXPECT_EQ(price("12.5"), 12 * kPicoPerTokenForOneDollarPer1k + kPicoPerTokenForOneDollarPer1k / 2);
}

TEST(ParsePrice, NineDecimalsIsTheSmallestStep) {
  EXPECT_EQ(price("0.000000001"), 1);
  EXPECT_EQ(price("0.000000001000000"), 1);  // zeros past the 9th decimal change nothing
  EXPECT_NE(price_error("0.0000000001").find("9 decimal places"), std::string::npos);
  EXPECT_NE(price_error("0.0000000015").find("9 decimal places"), std::string::npos);
}

TEST(ParsePrice, LargestValueFitsAndOneMoreIsRejected) {
  EXPECT_EQ(price("9223372036.854775807"), std::numeric_limits<std::int64_t>::max());
  EXPECT_NE(price_error("9223372036.854775808").find("too large"), std::string::npos);
  EXPECT_NE(price_error("99999999999999999999999").find("too large"), std::string::npos);
}

TEST(ParsePrice, RejectsNegativesExponentsAndGarbageWithAReason) {
  EXPECT_NE(price_error("-0.001").find("negative"), std::string::npos);
  EXPECT_NE(price_error("2.5e-3").find("exponent"), std::string::npos);
  EXPECT_NE(price_error("1E2").find("exponent"), std::string::npos);
  for (std::string_view garbage : {"", "abc", ".5", "5.", "1.2.3", " 1", "1 ", "+1", "0x10", "1,5", "nan", "inf"}) {
    EXPECT_FALSE(parse_price_per_1k(garbage)) << '"' << garbage << '"';
  }
  EXPECT_NE(price_error("abc").find("plain decimal"), std::string::npos);
}

TEST(FormatUsd, ShortestExactDecimal) {
  EXPECT_EQ(format_usd(Money{0}), "0");
  EXPECT_EQ(format_usd(Money{1}), "0.000000000001");
  EXPECT_EQ(format_usd(Money{1'000'000'000'000}), "1");
  EXPECT_EQ(format_usd(Money{1'500'000'000'000}), "1.5");
  EXPECT_EQ(format_usd(Money{123'000'000}), "0.000123");
  EXPECT_EQ(format_usd(Money{10'000'000'000'000}), "10");
  EXPECT_EQ(format_usd(Money{10'000'000'000'001}), "10.000000000001");
}

TEST(FormatUsd, NegativeAmountsForNegativeSavings) {
  EXPECT_EQ(format_usd(Money{-500'000'000'000}), "-0.5");
  EXPECT_EQ(format_usd(Money{-1}), "-0.000000000001");
  EXPECT_EQ(format_usd_pico(std::numeric_limits<std::int64_t>::min()), "-9223372.036854775808");
  EXPECT_EQ(format_usd_pico(std::numeric_limits<std::int64_t>::max()), "9223372.036854775807");
}

TEST(FormatUsd, ThousandTokensAtAPriceReadsBackAsThatPrice) {
  const Rates rates{0, 0, std::nullopt};
  for (std::string_view text : {"0.0025", "0.00015", "0.01", "0.000000001", "3", "0.5"}) {
    Rates priced = rates;
    priced.input_pico_per_token = price(text);
    const auto thousand = cost(priced, Usage{1000, 0, 0});
    ASSERT_TRUE(thousand);
    EXPECT_EQ(format_usd(*thousand), text);
  }
}

Rates gpt_4o_rates() { return Rates{price("0.0025"), price("0.01"), price("0.00125")}; }

TEST(Cost, SplitsCachedPromptTokensFromTheRest) {
  const auto charged = cost(gpt_4o_rates(), Usage{1000, 200, 400});
  ASSERT_TRUE(charged);
  // 600 uncached at $0.0025/1k + 400 cached at $0.00125/1k + 200 out at $0.01/1k
  // = $0.0015 + $0.0005 + $0.002 = $0.004
  EXPECT_EQ(format_usd(*charged), "0.004");
}

TEST(Cost, CachedTokensCostTheInputPriceWhenNoCachedPriceIsSet) {
  Rates rates = gpt_4o_rates();
  rates.cached_input_pico_per_token.reset();
  EXPECT_EQ(cost(rates, Usage{1000, 0, 400}), cost(rates, Usage{1000, 0, 0}));
}

TEST(Cost, CachedCountAbovePromptCountIsCapped) {
  EXPECT_EQ(cost(gpt_4o_rates(), Usage{100, 0, 5000}), cost(gpt_4o_rates(), Usage{100, 0, 100}));
}

TEST(Cost, UnpricedModelsHaveNoCost) {
  EXPECT_FALSE(cost(Rates{}, Usage{10, 10, 0}));
  EXPECT_FALSE(cost(Rates{price("0.001"), std::nullopt, std::nullopt}, Usage{10, 10, 0}));
  EXPECT_FALSE(cost(Rates{std::nullopt, price("0.001"), std::nullopt}, Usage{10, 10, 0}));
  // Free is a price, not the absence of one.
  EXPECT_EQ(cost(Rates{0, 0, std::nullopt}, Usage{10, 10, 0}), Money{0});
}

TEST(Cost, OverflowIsReportedNotWrapped) {
  const std::uint64_t huge = std::numeric_limits<std::uint64_t>::max();
  EXPECT_FALSE(cost(gpt_4o_rates(), Usage{huge, 0, 0}));
  EXPECT_FALSE(cost(gpt_4o_rates(), Usage{0, huge, 0}));
  // Each product fits, their sum does not.
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  EXPECT_FALSE(cost(Rates{max, max, std::nullopt}, Usage{1, 1, 0}));
  EXPECT_EQ(cost(Rates{max, 0, std::nullopt}, Usage{1, 1, 0}), Money{max});
}

TEST(CheckedAdd, DetectsOverflowBothWays) {
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(checked_add(Money{max - 1}, Money{1}), Money{max});
  EXPECT_FALSE(checked_add(Money{max}, Money{1}));
  EXPECT_FALSE(checked_add(Money{std::numeric_limits<std::int64_t>::min()}, Money{-1}));
  EXPECT_EQ(checked_add(Money{5}, Money{-7}), Money{-2});
}

TEST(Cost, AMillionCallsSumWithoutDrift) {
  const Rates rates{price("0.00015"), price("0.0006"), price("0.000075")};
  constexpr std::uint64_t kCalls = 1'000'000;
  Money total;
  // Independent total: add up the token counts first, multiply by the price once.
  std::uint64_t uncached_tokens = 0;
  std::uint64_t cached_tokens = 0;
  std::uint64_t completion_tokens = 0;
  for (std::uint64_t call = 0; call < kCalls; ++call) {
    const Usage usage{100 + call % 1000, call % 500, call % 3 == 0 ? 50u : 0u};
    const auto charged = cost(rates, usage);
    ASSERT_TRUE(charged);
    const auto sum = checked_add(total, *charged);
    ASSERT_TRUE(sum);
    total = *sum;
    uncached_tokens += usage.prompt_tokens - usage.cached_tokens;
    cached_tokens += usage.cached_tokens;
    completion_tokens += usage.completion_tokens;
  }
  const auto expected = static_cast<std::int64_t>(uncached_tokens) * 150'000 +
                        static_cast<std::int64_t>(cached_tokens) * 75'000 +
                        static_cast<std::int64_t>(completion_tokens) * 600'000;
  EXPECT_EQ(total.pico, expected);
}

TEST(Cost, AMillionIdenticalCallsCostExactlyAMillionTimesOne) {
  const Rates rates{price("0.00015"), price("0.0006"), price("0.000075")};
  const Usage usage{1234, 321, 200};
  const auto one = cost(rates, usage);
  ASSERT_TRUE(one);
  // 1034 * $0.00000015 + 200 * $0.000000075 + 321 * $0.0000006 = $0.0003627 per call.
  EXPECT_EQ(format_usd(*one), "0.0003627");
  Money total;
  for (int call = 0; call < 1'000'000; ++call) total += *one;
  EXPECT_EQ(format_usd(total), "362.7");
}

TEST(BuiltinModels, SpecModelsMatchTheSpecPrices) {
  // docs/REFERENCE.md §3.2 (USD per 1k): the built-in table and the defaults agree.
  struct Expected {
    std::string_view model, input, output;
    std::uint64_t context_window;
  };
  for (const Expected& e : {Expected{"gpt-3.5-turbo", "0.0005", "0.0015", 16385},
                            Expected{"gpt-4o-mini", "0.00015", "0.0006", 128000},
                            Expected{"gpt-4o", "0.0025", "0.01", 128000}}) {
    const BuiltinModel* model = builtin_model(e.model);
    ASSERT_NE(model, nullptr) << e.model;
    EXPECT_EQ(model->rates.input_pico_per_token, price(e.input)) << e.model;
    EXPECT_EQ(model->rates.output_pico_per_token, price(e.output)) << e.model;
    EXPECT_EQ(model->context_window, e.context_window) << e.model;
  }
}

TEST(BuiltinModels, CachedInputPricesWherePublished) {
  // gpt-4.1: $2.00 in, $0.50 cached, $8.00 out per 1M, i.e. 0.002 / 0.0005 / 0.008 per 1k.
  const Rates* gpt41 = builtin_rates("gpt-4.1");
  ASSERT_NE(gpt41, nullptr);
  EXPECT_EQ(gpt41->input_pico_per_token, price("0.002"));
  EXPECT_EQ(gpt41->cached_input_pico_per_token, price("0.0005"));
  EXPECT_EQ(gpt41->output_pico_per_token, price("0.008"));
  EXPECT_FALSE(builtin_rates("gpt-4")->cached_input_pico_per_token);
}

TEST(BuiltinModels, FirstGpt4oSnapshotHasItsOwnPrice) {
  const Rates* current = builtin_rates("gpt-4o");
  const Rates* first = builtin_rates("gpt-4o-2024-05-13");
  ASSERT_NE(current, nullptr);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->input_pico_per_token, price("0.005"));
  EXPECT_EQ(first->output_pico_per_token, price("0.015"));
  EXPECT_FALSE(first->cached_input_pico_per_token);
  EXPECT_NE(first->input_pico_per_token, current->input_pico_per_token);
  EXPECT_EQ(builtin_rates("gpt-4o-2024-08-06")->input_pico_per_token, current->input_pico_per_token);
}

TEST(BuiltinModels, UnlistedDatedSnapshotsFallBackToTheirBaseModel) {
  EXPECT_EQ(builtin_model("gpt-4.1-2025-04-14"), builtin_model("gpt-4.1"));
  EXPECT_EQ(builtin_model("o3-mini-2025-01-31"), builtin_model("o3-mini"));
  EXPECT_EQ(builtin_model("gpt-4o-mini-2099-01-01"), builtin_model("gpt-4o-mini"));
  EXPECT_EQ(builtin_model("gpt-4o-2024-05-13")->name, "gpt-4o-2024-05-13");  // exact wins
}

TEST(BuiltinModels, UnknownNamesAreNotGuessed) {
  for (std::string_view name : {"", "gpt-9", "gpt-4o-", "my-model-2024-01-01", "gpt-4o-2024-1-01", "GPT-4O"}) {
    EXPECT_EQ(builtin_model(name), nullptr) << name;
    EXPECT_EQ(builtin_rates(name), nullptr) << name;
  }
}

TEST(BuiltinModels, EveryEntryIsPricedAndHasLimits) {
  ASSERT_FALSE(builtin_models().empty());
  for (const BuiltinModel& model : builtin_models()) {
    EXPECT_TRUE(model.rates.priced()) << model.name;
    EXPECT_GT(*model.rates.input_pico_per_token, 0) << model.name;
    if (model.kind == ModelKind::chat) {
      EXPECT_GT(*model.rates.output_pico_per_token, *model.rates.input_pico_per_token) << model.name;
    } else {
      EXPECT_EQ(*model.rates.output_pico_per_token, 0) << model.name;  // embeddings: input only
    }
    if (model.rates.cached_input_pico_per_token) {
      EXPECT_LT(*model.rates.cached_input_pico_per_token, *model.rates.input_pico_per_token) << model.name;
    }
    EXPECT_GT(model.context_window, model.max_output_tokens) << model.name;
    EXPECT_EQ(builtin_model(model.name), &model) << model.name;
  }
}

TEST(BuiltinModels, EmbeddingModelsBillInputOnlyPerThousandTokens) {
  // OpenAI: $0.02, $0.13 and $0.10 per 1M input tokens, i.e. per 1k: 0.00002 / 0.00013 / 0.0001.
  struct Expected {
    std::string_view model, input;
  };
  for (const Expected& e : {Expected{"text-embedding-3-small", "0.00002"}, Expected{"text-embedding-3-large", "0.00013"},
                            Expected{"text-embedding-ada-002", "0.0001"}}) {
    const BuiltinModel* model = builtin_model(e.model);
    ASSERT_NE(model, nullptr) << e.model;
    EXPECT_EQ(model->kind, ModelKind::embedding) << e.model;
    EXPECT_EQ(model->rates.input_pico_per_token, price(e.input)) << e.model;
    EXPECT_EQ(model->rates.output_pico_per_token, 0) << e.model;
    EXPECT_EQ(model->context_window, 8191u) << e.model;  // per input
  }
  // 1,000 tokens of text-embedding-3-small cost exactly $0.00002.
  const auto thousand = cost(builtin_model("text-embedding-3-small")->rates, Usage{1000, 0, 0});
  ASSERT_TRUE(thousand);
  EXPECT_EQ(format_usd(*thousand), "0.00002");
  EXPECT_EQ(builtin_model("gpt-4o")->kind, ModelKind::chat);
}

}  // namespace
}  // namespace turnout::pricing
