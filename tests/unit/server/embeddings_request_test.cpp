// Parse and plan stages of POST /v1/embeddings: every accepted input shape, errors that
// name the field, the exact count (token arrays by length), and routing only to the named
// model with the model's limit checked per input.
#include "config/config.hpp"
#include "server/embeddings_plan.hpp"
#include "server/embeddings_request.hpp"

#include "built_in_config.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ts = turnout::server;
namespace config = turnout::config;

namespace {

ts::RequestError parse_error(ts::EmbeddingsRequestParser& parser, std::string_view body) {
  auto result = parser.parse(body);
  EXPECT_TRUE(std::holds_alternative<ts::RequestError>(result)) << body;
  if (auto* e = std::get_if<ts::RequestError>(&result)) return *e;
  return {};
}

const ts::EmbeddingsRequest& parse_ok(ts::EmbeddingsRequestParser& parser, std::string_view body) {
  auto result = parser.parse(body);
  if (auto* e = std::get_if<ts::RequestError>(&result)) ADD_FAILURE() << e->message << " for " << body;
  static ts::EmbeddingsRequest empty;
  return std::holds_alternative<const ts::EmbeddingsRequest*>(result) ? *std::get<const ts::EmbeddingsRequest*>(result)
                                                                      : empty;
}

ts::CallPlan plan_ok(const config::Config& cfg, std::string_view body) {
  ts::EmbeddingsRequestParser parser;
  auto planned = ts::plan_embeddings_call(cfg, parser, body);
  if (auto* e = std::get_if<ts::ApiError>(&planned)) ADD_FAILURE() << e->message << " for " << body;
  return std::holds_alternative<ts::CallPlan>(planned) ? std::get<ts::CallPlan>(planned) : ts::CallPlan{};
}

ts::ApiError plan_error(const config::Config& cfg, std::string_view body) {
  ts::EmbeddingsRequestParser parser;
  auto planned = ts::plan_embeddings_call(cfg, parser, body);
  EXPECT_TRUE(std::holds_alternative<ts::ApiError>(planned)) << body;
  return std::holds_alternative<ts::ApiError>(planned) ? std::get<ts::ApiError>(planned) : ts::ApiError{};
}

}  // namespace

TEST(EmbeddingsRequest, AcceptsTheFourInputShapes) {
  ts::EmbeddingsRequestParser p;
  const auto& one = parse_ok(p, R"({"model":"text-embedding-3-small","input":"hello world"})");
  ASSERT_EQ(one.inputs.size(), 1u);
  EXPECT_EQ(one.inputs[0].text, "hello world");
  EXPECT_FALSE(one.inputs[0].is_tokens);

  const auto& batch = parse_ok(p, R"({"model":"m","input":["a","b","c"],"dimensions":256,"encoding_format":"base64","user":"u"})");
  ASSERT_EQ(batch.inputs.size(), 3u);
  EXPECT_EQ(batch.inputs[2].text, "c");
  EXPECT_EQ(batch.dimensions, 256u);
  EXPECT_EQ(batch.encoding_format, ts::EmbeddingEncodingFormat::base64);

  const auto& tokens = parse_ok(p, R"({"model":"m","input":[15339,1917,0]})");
  ASSERT_EQ(tokens.inputs.size(), 1u);
  EXPECT_TRUE(tokens.inputs[0].is_tokens);
  EXPECT_EQ(tokens.inputs[0].token_count, 3u);

  const auto& token_batch = parse_ok(p, R"({"model":"m","input":[[1,2],[3,4,5,6]]})");
  ASSERT_EQ(token_batch.inputs.size(), 2u);
  EXPECT_EQ(token_batch.inputs[1].token_count, 4u);
  EXPECT_EQ(token_batch.encoding_format, ts::EmbeddingEncodingFormat::float_array);
}

TEST(EmbeddingsRequest, BadInputsNameTheField) {
  ts::EmbeddingsRequestParser p;
  EXPECT_EQ(parse_error(p, "{not json").code, "invalid_json");
  EXPECT_EQ(parse_error(p, R"({"input":"x"})").param, "model");
  EXPECT_EQ(parse_error(p, R"({"model":5,"input":"x"})").param, "model");
  EXPECT_EQ(parse_error(p, R"({"model":"a\nb","input":"x"})").param, "model");
  EXPECT_EQ(parse_error(p, R"({"model":"m"})").param, "input");
  EXPECT_EQ(parse_error(p, R"({"model":"m","input":""})").param, "input");
  EXPECT_EQ(parse_error(p, R"({"model":"m","input":[]})").param, "input");
  EXPECT_EQ(parse_error(p, R"({"model":"m","input":{"text":"x"}})").param, "input");
  EXPECT_EQ(parse_error(p, R"({"model":"m","input":[1,-2]})").param, "input");
  EXPECT_EQ(parse_error(p, R"({"model":"m","input":[1,"x"]})").param, "input");
  EXPECT_EQ(parse_error(p, R"({"model":"m","input":["a",[1]]})").message.find("input[1]") != std::string::npos, true);
  EXPECT_EQ(parse_error(p, R"({"model":"m","input":["a",""]})").message.find("input[1]") != std::string::npos, true);
  EXPECT_EQ(parse_error(p, R"({"model":"m","input":[[1],[]]})").message.find("input[1]") != std::string::npos, true);
  EXPECT_EQ(parse_error(p, R"({"model":"m","input":"x","dimensions":0})").param, "dimensions");
  EXPECT_EQ(parse_error(p, R"({"model":"m","input":"x","dimensions":-3})").param, "dimensions");
  EXPECT_EQ(parse_error(p, R"({"model":"m","input":"x","dimensions":"256"})").param, "dimensions");
  EXPECT_EQ(parse_error(p, R"({"model":"m","input":"x","encoding_format":"int8"})").param, "encoding_format");
  EXPECT_EQ(parse_error(p, R"({"model":"m","input":"x","user":7})").param, "user");
  std::string too_many = R"({"model":"m","input":[)";
  for (std::size_t i = 0; i <= ts::kMaxEmbeddingInputs; ++i) too_many += i ? ",\"x\"" : "\"x\"";
  too_many += "]}";
  EXPECT_EQ(parse_error(p, too_many).param, "input");
}

TEST(EmbeddingsPlan, CountsEveryInputExactlyAndRoutesToTheNamedModel) {
  const auto cfg = turnout::test::built_in_config();
  // cl100k_base: "hello world" is 2 tokens, "The quick brown fox" 4; token arrays by length.
  const auto plan = plan_ok(cfg, R"({"model":"text-embedding-3-small","input":["hello world","The quick brown fox"]})");
  EXPECT_EQ(plan.decision.primary.model, "text-embedding-3-small");
  EXPECT_EQ(plan.decision.primary.route, "explicit");
  EXPECT_EQ(plan.decision.primary.prompt_tokens, 6u);
  EXPECT_EQ(plan.decision.routing_prompt_tokens, 6u);
  EXPECT_EQ(plan_ok(cfg, R"({"model":"text-embedding-3-small","input":[[1,2,3],[4]]})").decision.primary.prompt_tokens, 4u);
  EXPECT_EQ(plan.operation, ts::kEmbeddingsOperation);
  EXPECT_FALSE(plan.stream);
  // $0.02 per 1M tokens: 20,000 pico-dollars a token.
  EXPECT_EQ(plan.decision.primary.rates.input_pico_per_token, 20'000);
}

TEST(EmbeddingsPlan, TheLimitIsPerInputNotPerRequest) {
  const auto cfg = turnout::test::built_in_config();
  // Two inputs of 5,000 tokens each: 10,000 in all, above 8,191, yet each fits.
  std::string tokens;
  for (int i = 0; i < 5000; ++i) tokens += i ? ",1" : "1";
  const auto plan = plan_ok(cfg, R"({"model":"text-embedding-3-large","input":[[)" + tokens + "],[" + tokens + "]]}");
  EXPECT_EQ(plan.decision.primary.prompt_tokens, 10'000u);
  // One input of 9,000 tokens does not fit.
  std::string long_tokens;
  for (int i = 0; i < 9000; ++i) long_tokens += i ? ",1" : "1";
  const auto error = plan_error(cfg, R"({"model":"text-embedding-3-large","input":[)" + long_tokens + "]}");
  EXPECT_EQ(error.status, 400);
  EXPECT_EQ(error.param, "input");
  EXPECT_EQ(error.code, "context_length_exceeded");
}

TEST(EmbeddingsPlan, AnAliasIsRefusedNamingTheModelField) {
  const auto cfg = turnout::test::built_in_config();
  const auto error = plan_error(cfg, R"({"model":"auto","input":"hello"})");
  EXPECT_EQ(error.status, 400);
  EXPECT_EQ(error.param, "model");
  EXPECT_EQ(plan_error(cfg, R"({"model":"text-embedding-3-small","input":5})").param, "input");
}

// As for chat (chat_request_test.cpp): a top-level key twice is refused, naming the key.
TEST(EmbeddingsRequest, DuplicateTopLevelKeysAreRejectedByName) {
  ts::EmbeddingsRequestParser parser;
  for (const std::string key : {"model", "input", "dimensions", "encoding_format"}) {
    const std::string value = key == "model" ? R"("text-embedding-3-small")" : key == "dimensions" ? "8"
                              : key == "encoding_format" ? R"("float")" : R"("x")";
    const std::string head = key == "model" ? R"({"input":"hi",)" : key == "input" ? R"({"model":"text-embedding-3-small",)"
                                                                      : R"({"model":"text-embedding-3-small","input":"hi",)";
    const std::string body = head + "\"" + key + "\":" + value + ",\"" + key + "\":" + value + "}";
    const ts::RequestError e = parse_error(parser, body);
    EXPECT_EQ(e.param, key) << body;
    EXPECT_EQ(e.code, "duplicate_key") << body;
  }
}
