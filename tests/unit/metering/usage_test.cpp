// Usage from a buffered completion or from stream deltas (one traversal for both), and
// the bill and headers every chat response gets.
#include "metering/call_bill.hpp"
#include "metering/usage.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace turnout::metering {
namespace {

using tokenizer::EncodingId;

simdjson::dom::element parse(simdjson::dom::parser& parser, const std::string& json) {
  return parser.parse(json).value();
}

TEST(ReadUsage, ReportedCountsAndCachedTokensCappedAtThePrompt) {
  simdjson::dom::parser parser;
  auto u = read_usage(parse(parser, R"({"prompt_tokens":10,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":99}})"));
  ASSERT_TRUE(u);
  EXPECT_EQ(u->prompt_tokens, 10u);
  EXPECT_EQ(u->completion_tokens, 4u);
  EXPECT_EQ(u->cached_tokens, 10u);
  EXPECT_FALSE(read_usage(parse(parser, R"({"prompt_tokens":10})")));
  EXPECT_FALSE(read_usage(parse(parser, R"({"prompt_tokens":-1,"completion_tokens":2})")));
}

// The gateway's prompt count, as the endpoints hand it over: taken only if asked.
PromptCount counted(std::uint64_t tokens) {
  return [tokens] { return tokens; };
}

// A count the meter must not take: the upstream reported usage.
PromptCount never_asked() {
  return [] {
    ADD_FAILURE() << "the prompt was counted although the upstream reported usage";
    return std::uint64_t{0};
  };
}

TEST(MeterCompletion, PrefersTheUpstreamsReport) {
  simdjson::dom::parser parser;
  auto m = meter_completion(
      parse(parser, R"({"choices":[{"message":{"content":"hello there"}}],"usage":{"prompt_tokens":7,"completion_tokens":2}})"),
      EncodingId::cl100k_base, never_asked());
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->reported);
  EXPECT_EQ(m->usage.prompt_tokens, 7u);
}

TEST(MeterCompletion, CountsContentAndToolArgumentsWhenNoUsageIsReported) {
  simdjson::dom::parser parser;
  const auto& enc = tokenizer::Encoding::get(EncodingId::o200k_base);
  auto m = meter_completion(parse(parser, R"({"choices":[
      {"message":{"content":"The answer is 42."}},
      {"message":{"content":null,"tool_calls":[{"function":{"name":"f","arguments":"{\"x\":1}"}}]}}]})"),
                            EncodingId::o200k_base, counted(12));
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->reported);
  EXPECT_EQ(m->usage.prompt_tokens, 12u);
  EXPECT_EQ(m->usage.completion_tokens, enc.count("The answer is 42.") + enc.count("{\"x\":1}"));
}

TEST(MeterCompletion, NotAChatCompletion) {
  simdjson::dom::parser parser;
  EXPECT_FALSE(meter_completion(parse(parser, R"({"object":"list"})"), EncodingId::cl100k_base, never_asked()));
  EXPECT_FALSE(meter_completion(parse(parser, R"([1,2])"), EncodingId::cl100k_base, never_asked()));
}

TEST(StreamUsage, CountsTheConcatenatedDeltasExactly) {
  // Pieces split mid-word must be counted as the whole text, not piece by piece.
  const std::string text = "Streaming splits words like extraordinary across chunks.";
  simdjson::dom::parser parser;
  StreamUsage usage(EncodingId::cl100k_base);
  for (std::size_t i = 0; i < text.size(); i += 5) {
    std::string piece = text.substr(i, 5);
    std::string escaped;
    for (char c : piece) escaped += c;
    usage.observe(parse(parser, R"({"choices":[{"delta":{"content":")" + escaped + R"("}}]})"));
  }
  const MeteredUsage m = usage.finish(counted(3));
  EXPECT_FALSE(m.reported);
  EXPECT_EQ(m.usage.prompt_tokens, 3u);
  EXPECT_EQ(m.usage.completion_tokens, tokenizer::Encoding::get(EncodingId::cl100k_base).count(text));
}

TEST(StreamUsage, AReportedUsageChunkWins) {
  simdjson::dom::parser parser;
  StreamUsage usage(EncodingId::cl100k_base);
  usage.observe(parse(parser, R"({"choices":[{"delta":{"content":"abc"}}]})"));
  usage.observe(parse(parser, R"({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}})"));
  ASSERT_TRUE(usage.reported());
  const MeteredUsage m = usage.finish(never_asked());
  EXPECT_TRUE(m.reported);
  EXPECT_EQ(m.usage.prompt_tokens, 5u);
  EXPECT_EQ(m.usage.completion_tokens, 1u);
}

TEST(BillRecord, CostAndBaselineFromTheSameUsage) {
  pricing::Rates served{1000, 2000, std::nullopt};    // pico-dollars per token
  pricing::Rates baseline{5000, 10000, std::nullopt};
  ledger::CallRecord rec;
  bill_record(rec, MeteredUsage{pricing::Usage{10, 5, 0}, true}, served, &baseline);
  EXPECT_TRUE(rec.usage_reported);
  ASSERT_TRUE(rec.cost);
  EXPECT_EQ(rec.cost->pico, 10 * 1000 + 5 * 2000);
  ASSERT_TRUE(rec.baseline_cost);
  EXPECT_EQ(rec.baseline_cost->pico, 10 * 5000 + 5 * 10000);
  bill_record(rec, MeteredUsage{pricing::Usage{10, 5, 0}, false}, pricing::Rates{}, nullptr);
  EXPECT_FALSE(rec.cost);  // unpriced: never $0
  EXPECT_FALSE(rec.baseline_cost);
}

TEST(GatewayFields, AppendedAsTheLastMembersKeepingEveryByteBefore) {
  std::string body = "{\"id\":\"x\" , \"n\":1}\n";
  add_gateway_fields(body, pricing::Money{1500000}, 12.3456);
  EXPECT_EQ(body, "{\"id\":\"x\" , \"n\":1,\"cost_usd\":0.0000015,\"latency_ms\":12.346}");
  std::string empty = "{ }";
  add_gateway_fields(empty, std::nullopt, std::nullopt);
  EXPECT_EQ(empty, "{ \"cost_usd\":null}");
  std::string not_object = "[1]";
  add_gateway_fields(not_object, std::nullopt, std::nullopt);
  EXPECT_EQ(not_object, "[1]");
}

// The upstream client reserves kGatewayFieldsRoom past a body's length; the longest
// members the splice can add fit in it, so the body is not reallocated (nor copied).
TEST(GatewayFields, TheLongestMembersFitTheReservedRoom) {
  std::string body = R"({"id":"chatcmpl-1","object":"chat.completion"})";
  body.reserve(body.size() + kGatewayFieldsRoom);
  const char* before = body.data();
  add_gateway_fields(body, pricing::Money{std::numeric_limits<std::int64_t>::min() + 1}, 999999999999.999);
  EXPECT_EQ(body,
            R"({"id":"chatcmpl-1","object":"chat.completion","cost_usd":-9223372.036854775807,"latency_ms":999999999999.999})");
  EXPECT_EQ(body.data(), before);
}

TEST(CallHeaders, RoutingCountAndTheModelsOwnCountWhenItDiffers) {
  CallHeaders h;
  h.model = "gpt-4o";
  h.route = "complex";
  h.routing_prompt_tokens = 1179;
  h.model_prompt_tokens = 1150;
  h.attempts = 2;
  h.overhead_us = 87;
  h.cost = pricing::Money{2500000};
  std::string buffered;
  append_call_headers(buffered, h);
  EXPECT_EQ(buffered,
            "x-turnout-model: gpt-4o\r\n"
            "x-turnout-route: complex\r\n"
            "x-turnout-prompt-tokens: 1179\r\n"
            "x-turnout-model-prompt-tokens: 1150\r\n"
            "x-turnout-attempts: 2\r\n"
            "x-turnout-overhead-us: 87\r\n"
            "x-turnout-cost-usd: 0.0000025\r\n");
  std::string streamed;
  h.model_prompt_tokens.reset();
  h.cost.reset();
  h.route = "fallback:gpt-4o";
  h.routing_prompt_tokens = 18446744073709551615ull;
  append_call_headers(streamed, h);
  EXPECT_EQ(streamed,
            "x-turnout-model: gpt-4o\r\n"
            "x-turnout-route: fallback:gpt-4o\r\n"
            "x-turnout-prompt-tokens: 18446744073709551615\r\n"
            "x-turnout-attempts: 2\r\n"
            "x-turnout-overhead-us: 87\r\n");
}

}  // namespace
}  // namespace turnout::metering
