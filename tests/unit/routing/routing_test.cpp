// Routing (docs/REFERENCE.md §4.1-§4.3): explicit models, tiers at their exact boundaries,
// context fit, unknown models, and which fallbacks are kept.
#include "routing/router.hpp"

#include "built_in_config.hpp"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace turnout::routing {
namespace {

using tokenizer::EncodingId;

config::Config parse(std::string_view yaml) {
  auto config = config::parse_config(yaml, "routing-test.yaml", [](std::string_view) { return std::nullopt; });
  EXPECT_TRUE(config) << (config ? "" : config.error().message);
  return config.value();
}

// A prompt whose token count differs by encoding, as real prompts do.
struct Prompt {
  std::uint64_t cl100k = 0;
  std::uint64_t o200k = 0;
};

RouteInput input_for(std::string_view model, Prompt prompt, std::uint64_t output = 0) {
  return RouteInput{model, output, [prompt](EncodingId encoding) {
                      return encoding == EncodingId::cl100k_base ? prompt.cl100k : prompt.o200k;
                    }};
}

Prompt same_count(std::uint64_t tokens) { return Prompt{tokens, tokens}; }

Decision decide_ok(const config::Config& config, const RouteInput& input) {
  auto decision = decide(config, input);
  EXPECT_TRUE(decision) << (decision ? "" : decision.error().message);
  return decision ? *decision : Decision{};
}

RouteError decide_error(const config::Config& config, const RouteInput& input) {
  auto decision = decide(config, input);
  EXPECT_FALSE(decision) << "routed to " << (decision ? decision->primary.model : "");
  return decision ? RouteError{} : decision.error();
}

#define EXPECT_CONTAINS(text, part) EXPECT_NE((text).find(part), std::string::npos) << "in: " << (text)

// ---- tiers ----------------------------------------------------------------------------

TEST(TierRouting, ExactBoundaries) {
  const config::Config config = test::built_in_config();
  struct Case {
    std::uint64_t tokens;
    std::string_view tier, model;
  };
  for (const Case& c : {Case{0, "simple", "gpt-3.5-turbo"}, Case{999, "simple", "gpt-3.5-turbo"},
                        Case{1000, "medium", "gpt-4o-mini"}, Case{3999, "medium", "gpt-4o-mini"},
                        Case{4000, "complex", "gpt-4o"}, Case{100000, "complex", "gpt-4o"}}) {
    const Decision decision = decide_ok(config, input_for("", same_count(c.tokens)));
    EXPECT_EQ(decision.primary.route, c.tier) << c.tokens;
    EXPECT_EQ(decision.primary.model, c.model) << c.tokens;
  }
}

TEST(TierRouting, AliasesAndAnEmptyModelRoute) {
  const config::Config config = test::built_in_config();
  EXPECT_EQ(decide_ok(config, input_for("auto", same_count(10))).primary.route, "simple");
  EXPECT_EQ(decide_ok(config, input_for("", same_count(10))).primary.route, "simple");
}

TEST(TierRouting, TheRuleCountsWithTheRoutingEncodingAndTheModelCountsWithItsOwn) {
  const config::Config config = test::built_in_config();  // routing.encoding cl100k_base; gpt-4o-mini is o200k_base
  const Decision decision = decide_ok(config, input_for("auto", Prompt{1500, 1400}));
  EXPECT_EQ(decision.routing_encoding, EncodingId::cl100k_base);
  EXPECT_EQ(decision.routing_prompt_tokens, 1500u);
  EXPECT_EQ(decision.primary.model, "gpt-4o-mini");
  EXPECT_EQ(decision.primary.encoding, EncodingId::o200k_base);
  EXPECT_EQ(decision.primary.prompt_tokens, 1400u);
}

TEST(TierRouting, CandidateCarriesTheModelsConfiguration) {
  const config::Config config = test::built_in_config();
  const Candidate primary = decide_ok(config, input_for("", same_count(5000))).primary;
  const config::ModelConfig& gpt4o = *config.find_model("gpt-4o");
  EXPECT_EQ(primary.upstream_name, gpt4o.upstream_name);
  EXPECT_EQ(primary.provider, "openai");
  EXPECT_EQ(primary.context_window, 128000u);
  EXPECT_EQ(primary.rates.input_pico_per_token, gpt4o.rates.input_pico_per_token);
  EXPECT_EQ(primary.rates.output_pico_per_token, gpt4o.rates.output_pico_per_token);
}

TEST(TierRouting, ReplacedAliasesNoLongerRoute) {
  const config::Config config = parse("routing: {aliases: [smart]}\n");
  EXPECT_EQ(decide_ok(config, input_for("smart", same_count(10))).primary.route, "simple");
  // "auto" is now just an unknown model name, sent as is (allow_unknown_models).
  const Decision decision = decide_ok(config, input_for("auto", same_count(10)));
  EXPECT_EQ(decision.primary.route, "explicit");
  EXPECT_EQ(decision.primary.upstream_name, "auto");
}

// ---- context fit ----------------------------------------------------------------------

TEST(ContextFit, PromptPlusOutputEqualToTheWindowFits) {
  // gpt-3.5-turbo has 16385 tokens: 385 + 16000 is exactly the window.
  const Decision decision = decide_ok(test::built_in_config(), input_for("", same_count(385), 16000));
  EXPECT_EQ(decision.primary.model, "gpt-3.5-turbo");
  EXPECT_EQ(decision.primary.route, "simple");
}

TEST(ContextFit, OneTokenOverMovesToTheNextTierThatFits) {
  const Decision decision = decide_ok(test::built_in_config(), input_for("", same_count(386), 16000));
  EXPECT_EQ(decision.primary.model, "gpt-4o-mini");
  EXPECT_EQ(decision.primary.route, "context-fit");
}

TEST(ContextFit, MovesPastSeveralTiers) {
  const config::Config config = parse(R"(
models:
  tiny:  {provider: openai, input_cost_per_1k: 0.001, output_cost_per_1k: 0.002, context_window: 100}
  small: {provider: openai, input_cost_per_1k: 0.001, output_cost_per_1k: 0.002, context_window: 200}
  large: {provider: openai, input_cost_per_1k: 0.001, output_cost_per_1k: 0.002, context_window: 1000}
routing:
  tiers:
    - {name: a, below: 50, model: tiny}
    - {name: b, below: 60, model: small}
    - {name: c, model: large}
  baseline_model: large
)");
  const Decision decision = decide_ok(config, input_for("", same_count(40), 500));
  EXPECT_EQ(decision.primary.model, "large");
  EXPECT_EQ(decision.primary.route, "context-fit");
}

TEST(ContextFit, NoTierFitsIsAnOpenAiStyleError) {
  const RouteError error = decide_error(test::built_in_config(), input_for("", Prompt{127500, 127000}, 2000));
  EXPECT_EQ(error.kind, RouteErrorKind::context_length_exceeded);
  // Quoted for the largest window tried (gpt-4o, counted with its o200k_base encoding).
  EXPECT_EQ(error.message,
            "This model's maximum context length is 128000 tokens. However, you requested 129000 tokens "
            "(127000 in the messages, 2000 in the completion). Please reduce the length of the messages or "
            "completion. (model: gpt-4o)");
}

TEST(ContextFit, ExplicitModelThatDoesNotFitIsNotMoved) {
  const RouteError error = decide_error(test::built_in_config(), input_for("gpt-3.5-turbo", same_count(20000)));
  EXPECT_EQ(error.kind, RouteErrorKind::context_length_exceeded);
  EXPECT_CONTAINS(error.message, "maximum context length is 16385 tokens");
  EXPECT_CONTAINS(error.message, "(model: gpt-3.5-turbo)");
}

TEST(ContextFit, HugeRequestedOutputDoesNotWrapAround) {
  const RouteError error = decide_error(test::built_in_config(), input_for("gpt-4o", same_count(10), ~std::uint64_t{0}));
  EXPECT_EQ(error.kind, RouteErrorKind::context_length_exceeded);
}

// ---- the byte bound: a fit it proves needs no count ----------------------------------

// Tiers counted in cl100k_base; the models count in o200k_base (upstream gpt-4o), except
// `older` (gpt-4), which shares the routing encoding.
config::Config bounded_config() {
  return parse(R"(
models:
  short: {provider: openai, upstream_name: gpt-4o, context_window: 100}
  long:  {provider: openai, upstream_name: gpt-4o, context_window: 1000}
  older: {provider: openai, upstream_name: gpt-4, context_window: 100}
routing:
  encoding: cl100k_base
  tiers:
    - {name: a, below: 50, model: short}
    - {name: b, model: long}
  fallbacks: {short: [older, long]}
  baseline_model: long
)");
}

// Records which encodings the router asked to count.
RouteInput bounded_input(std::string_view model, Prompt prompt, std::uint64_t bound, std::uint64_t output,
                         std::vector<EncodingId>& asked) {
  RouteInput input = input_for(model, prompt, output);
  input.count_prompt = [prompt, &asked](EncodingId encoding) {
    asked.push_back(encoding);
    return encoding == EncodingId::cl100k_base ? prompt.cl100k : prompt.o200k;
  };
  input.prompt_token_bound = bound;
  return input;
}

TEST(CountBound, AFitTheBoundProvesLeavesTheModelUncounted) {
  std::vector<EncodingId> asked;
  const Decision decision = decide_ok(bounded_config(), bounded_input("", Prompt{40, 30}, 60, 0, asked));
  EXPECT_EQ(decision.primary.model, "short");
  EXPECT_EQ(decision.primary.route, "a");
  EXPECT_EQ(decision.routing_prompt_tokens, 40u);
  EXPECT_EQ(decision.primary.prompt_tokens, std::nullopt);
  EXPECT_EQ(asked, std::vector<EncodingId>{EncodingId::cl100k_base});  // the tier rule's count only
  ASSERT_EQ(decision.fallbacks.size(), 2u);
  EXPECT_EQ(decision.fallbacks[0].model, "older");
  EXPECT_EQ(decision.fallbacks[0].prompt_tokens, 40u);  // the routing encoding's count, shared
  EXPECT_EQ(decision.fallbacks[1].prompt_tokens, std::nullopt);
}

TEST(CountBound, ABoundPastTheWindowIsSettledByTheExactCount) {
  std::vector<EncodingId> asked;
  const Decision decision = decide_ok(bounded_config(), bounded_input("", Prompt{40, 30}, 120, 0, asked));
  EXPECT_EQ(decision.primary.model, "short");  // 30 tokens fit 100, whatever the bound says
  EXPECT_EQ(decision.primary.route, "a");
  EXPECT_EQ(decision.primary.prompt_tokens, 30u);
}

TEST(CountBound, TheRequestedOutputCountsAgainstTheBoundToo) {
  std::vector<EncodingId> asked;
  // 60 + 50 > 100: counted; 30 + 50 fits.
  Decision decision = decide_ok(bounded_config(), bounded_input("", Prompt{40, 30}, 60, 50, asked));
  EXPECT_EQ(decision.primary.prompt_tokens, 30u);
  // 95 + 10 > 100 once counted: moved to `long`, whose window the bound fits (uncounted).
  decision = decide_ok(bounded_config(), bounded_input("", Prompt{40, 95}, 150, 10, asked));
  EXPECT_EQ(decision.primary.model, "long");
  EXPECT_EQ(decision.primary.route, "context-fit");
  EXPECT_EQ(decision.primary.prompt_tokens, std::nullopt);
}

TEST(CountBound, AnExplicitModelIsAlwaysCounted) {
  std::vector<EncodingId> asked;
  const Decision decision = decide_ok(bounded_config(), bounded_input("short", Prompt{40, 30}, 60, 0, asked));
  EXPECT_EQ(decision.primary.prompt_tokens, 30u);
  EXPECT_EQ(decision.routing_prompt_tokens, 30u);
  EXPECT_EQ(decision.routing_encoding, EncodingId::o200k_base);
}

// ---- max_output_tokens ----------------------------------------------------------------

constexpr std::string_view kCappedOutputConfig = R"(
models:
  capped: {provider: openai, input_cost_per_1k: 0.001, output_cost_per_1k: 0.002, context_window: 100000, max_output_tokens: 4096}
  roomy:  {provider: openai, input_cost_per_1k: 0.001, output_cost_per_1k: 0.002, context_window: 100000}
routing:
  tiers:
    - {name: cheap, below: 1000, model: capped}
    - {name: rest, model: roomy}
  baseline_model: roomy
)";

TEST(MaxOutputTokens, ExplicitRequestForMoreIsRefusedNamingMaxTokens) {
  const RouteError error = decide_error(parse(kCappedOutputConfig), input_for("capped", same_count(10), 5000));
  EXPECT_EQ(error.kind, RouteErrorKind::max_tokens_too_large);
  EXPECT_EQ(error.message,
            "max_tokens is too large: 5000. This model supports at most 4096 completion tokens, whereas you "
            "provided 5000. (model: capped)");
}

TEST(MaxOutputTokens, ExactlyTheLimitIsAccepted) {
  EXPECT_EQ(decide_ok(parse(kCappedOutputConfig), input_for("capped", same_count(10), 4096)).primary.model, "capped");
}

TEST(MaxOutputTokens, RoutedRequestMovesToAModelThatCanAnswer) {
  const Decision decision = decide_ok(parse(kCappedOutputConfig), input_for("", same_count(10), 5000));
  EXPECT_EQ(decision.primary.model, "roomy");
  EXPECT_EQ(decision.primary.route, "context-fit");
}

// ---- explicit and unknown models ------------------------------------------------------

TEST(ExplicitModels, ConfiguredModelIsUsedAsIs) {
  const Decision decision = decide_ok(test::built_in_config(), input_for("gpt-4o-mini", Prompt{900, 800}, 100));
  EXPECT_EQ(decision.primary.model, "gpt-4o-mini");
  EXPECT_EQ(decision.primary.route, "explicit");
  EXPECT_EQ(decision.primary.prompt_tokens, 800u);
  EXPECT_EQ(decision.routing_prompt_tokens, 800u);  // explicit: the model's own count
  EXPECT_EQ(decision.routing_encoding, EncodingId::o200k_base);
}

TEST(ExplicitModels, UpstreamNameIsSentUpstream) {
  const config::Config config = parse(R"(
models:
  fast: {provider: openai, upstream_name: gpt-4o-2024-08-06, input_cost_per_1k: 0.0025, output_cost_per_1k: 0.01, context_window: 128000}
routing: {tiers: [{name: all, model: fast}], baseline_model: fast}
)");
  const Candidate primary = decide_ok(config, input_for("fast", same_count(10))).primary;
  EXPECT_EQ(primary.model, "fast");
  EXPECT_EQ(primary.upstream_name, "gpt-4o-2024-08-06");
}

TEST(UnknownModels, BuiltinModelIsPricedAndContextChecked) {
  const Decision decision = decide_ok(test::built_in_config(), input_for("gpt-4.1", Prompt{10, 9}));
  EXPECT_EQ(decision.primary.model, "gpt-4.1");
  EXPECT_EQ(decision.primary.upstream_name, "gpt-4.1");
  EXPECT_EQ(decision.primary.provider, "openai");
  EXPECT_EQ(decision.primary.route, "explicit");
  EXPECT_EQ(decision.primary.encoding, EncodingId::o200k_base);
  EXPECT_EQ(decision.primary.prompt_tokens, 9u);
  EXPECT_EQ(decision.primary.context_window, pricing::builtin_model("gpt-4.1")->context_window);
  EXPECT_EQ(decision.primary.rates.input_pico_per_token, pricing::builtin_rates("gpt-4.1")->input_pico_per_token);

  const RouteError error = decide_error(test::built_in_config(), input_for("gpt-4", same_count(8000), 500));
  EXPECT_EQ(error.kind, RouteErrorKind::context_length_exceeded);
  EXPECT_CONTAINS(error.message, "maximum context length is 8192 tokens");
}

TEST(UnknownModels, ModelUnknownEverywhereIsUnpricedAndNotContextChecked) {
  const Decision decision = decide_ok(test::built_in_config(), input_for("my-finetune", same_count(5'000'000)));
  EXPECT_EQ(decision.primary.upstream_name, "my-finetune");
  EXPECT_EQ(decision.primary.context_window, 0u);
  EXPECT_FALSE(decision.primary.rates.priced());
  EXPECT_EQ(decision.primary.encoding, EncodingId::cl100k_base);  // routing.encoding
}

TEST(UnknownModels, RefusedWhenNotAllowed) {
  const RouteError error =
      decide_error(parse("routing: {allow_unknown_models: false}\n"), input_for("gpt-4.1", same_count(10)));
  EXPECT_EQ(error.kind, RouteErrorKind::model_not_found);
  EXPECT_EQ(error.message, "The model `gpt-4.1` does not exist or you do not have access to it.");
}

TEST(UnknownModels, GoToTheFirstProviderByNameWithoutAnOpenaiProvider) {
  const config::Config config = parse(R"(
providers:
  zeta:  {base_url: "http://127.0.0.1:9002/v1"}
  alpha: {base_url: "http://127.0.0.1:9001/v1"}
models:
  m: {provider: zeta, input_cost_per_1k: 0.001, output_cost_per_1k: 0.002, context_window: 1000}
routing: {tiers: [{name: all, model: m}], baseline_model: m}
)");
  EXPECT_EQ(decide_ok(config, input_for("other", same_count(1))).primary.provider, "alpha");
}

// ---- fallbacks ------------------------------------------------------------------------

constexpr std::string_view kFallbackConfig = R"(
models:
  primary: {provider: openai, input_cost_per_1k: 0.001, output_cost_per_1k: 0.002, context_window: 10000}
  narrow:  {provider: openai, input_cost_per_1k: 0.001, output_cost_per_1k: 0.002, context_window: 2000}
  capped:  {provider: openai, input_cost_per_1k: 0.001, output_cost_per_1k: 0.002, context_window: 50000, max_output_tokens: 100}
  wide:    {provider: openai, input_cost_per_1k: 0.001, output_cost_per_1k: 0.002, context_window: 50000}
routing:
  tiers: [{name: all, model: primary}]
  baseline_model: primary
  fallbacks: {primary: [narrow, capped, wide]}
)";

TEST(Fallbacks, KeptInOrderWithTheirRoute) {
  const Decision decision = decide_ok(parse(kFallbackConfig), input_for("primary", same_count(1000), 50));
  ASSERT_EQ(decision.fallbacks.size(), 3u);
  EXPECT_EQ(decision.fallbacks[0].model, "narrow");
  EXPECT_EQ(decision.fallbacks[1].model, "capped");
  EXPECT_EQ(decision.fallbacks[2].model, "wide");
  for (const Candidate& fallback : decision.fallbacks) EXPECT_EQ(fallback.route, "fallback:primary");
}

TEST(Fallbacks, ThoseThatDoNotFitAreSkipped) {
  const Decision decision = decide_ok(parse(kFallbackConfig), input_for("primary", same_count(5000), 200));
  ASSERT_EQ(decision.fallbacks.size(), 1u);  // narrow: window too small; capped: output too large
  EXPECT_EQ(decision.fallbacks[0].model, "wide");
}

TEST(Fallbacks, RoutedRequestsUseTheFallbacksOfTheChosenModel) {
  const Decision decision = decide_ok(parse(kFallbackConfig), input_for("", same_count(10)));
  EXPECT_EQ(decision.primary.route, "all");
  EXPECT_EQ(decision.fallbacks.size(), 3u);
}

TEST(Fallbacks, NoneForAModelWithoutAnEntry) {
  EXPECT_TRUE(decide_ok(parse(kFallbackConfig), input_for("wide", same_count(10))).fallbacks.empty());
}

}  // namespace
}  // namespace turnout::routing
