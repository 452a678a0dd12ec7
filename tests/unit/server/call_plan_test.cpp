// Parse -> count -> route for a chat body, and the error shapes the client gets.
#include "server/call_plan.hpp"
#include "server/openai_error.hpp"

#include "built_in_config.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <optional>
#include <string>

namespace turnout::server {
namespace {

std::string body_with_words(std::size_t words, std::string_view model = "auto") {
  std::string content;
  for (std::size_t i = 0; i < words; ++i) content += "lorem ipsum dolor sit amet ";
  return R"({"model":")" + std::string(model) + R"(","messages":[{"role":"user","content":")" + content + R"("}]})";
}

TEST(PlanCall, ShortPromptsTakeTheFirstTierAndReportTheRoutingCount) {
  const auto config = test::built_in_config();
  RequestParser parser;
  auto planned = plan_call(config, parser, body_with_words(3));
  ASSERT_TRUE(std::holds_alternative<CallPlan>(planned));
  const CallPlan& plan = std::get<CallPlan>(planned);
  EXPECT_EQ(plan.decision.primary.model, "gpt-3.5-turbo");
  EXPECT_EQ(plan.decision.primary.route, "simple");
  simdjson::dom::parser json;
  auto route = json.parse(route_json(plan)).value();
  EXPECT_EQ(route["prompt_tokens"].get_uint64().value(), plan.decision.routing_prompt_tokens);
  EXPECT_EQ(std::string_view(route["encoding"].get_string().value()), "cl100k_base");
  EXPECT_TRUE(route["model_prompt_tokens"].error());  // gpt-3.5-turbo counts in cl100k too
}

TEST(PlanCall, WhenTheRoutedModelCountsDifferentlyBothCountsAreShown) {
  const auto config = test::built_in_config();
  RequestParser parser;
  auto planned = plan_call(config, parser, body_with_words(300));  // > 1000 tokens: medium tier, gpt-4o-mini (o200k)
  ASSERT_TRUE(std::holds_alternative<CallPlan>(planned));
  const CallPlan& plan = std::get<CallPlan>(planned);
  EXPECT_EQ(plan.decision.primary.model, "gpt-4o-mini");
  simdjson::dom::parser json;
  auto route = json.parse(route_json(plan)).value();
  const std::uint64_t routing_count = route["prompt_tokens"].get_uint64().value();
  EXPECT_GE(routing_count, 1000u);  // the number the tier rule compared
  EXPECT_LT(routing_count, 4000u);
  EXPECT_EQ(std::string_view(route["encoding"].get_string().value()), "cl100k_base");
  EXPECT_EQ(route["model_prompt_tokens"].get_uint64().value(), plan.decision.primary.prompt_tokens);
  EXPECT_EQ(std::string_view(route["model_encoding"].get_string().value()), "o200k_base");
}

TEST(PlanCall, AnExplicitModelIsCountedOnceInItsOwnEncoding) {
  const auto config = test::built_in_config();
  RequestParser parser;
  auto planned = plan_call(config, parser, body_with_words(2, "gpt-4o"));
  ASSERT_TRUE(std::holds_alternative<CallPlan>(planned));
  const CallPlan& plan = std::get<CallPlan>(planned);
  EXPECT_EQ(plan.decision.primary.route, "explicit");
  EXPECT_EQ(plan.decision.routing_encoding, tokenizer::EncodingId::o200k_base);
  EXPECT_EQ(plan.decision.routing_prompt_tokens, plan.decision.primary.prompt_tokens);
  EXPECT_EQ(route_json(plan).find("model_prompt_tokens"), std::string::npos);
}

// Without count_every_model (a chat call of no virtual key), a routed model whose context
// window the byte bound fits is not counted in its own encoding: one tokenizer pass, not
// two. The count taken later from the same body is the one count_every_model gives.
TEST(PlanCall, TheRoutedModelsOwnCountIsTakenOnlyWhenAsked) {
  const auto config = test::built_in_config();
  RequestParser parser;
  const std::string body = body_with_words(300);  // medium tier: gpt-4o-mini, o200k_base
  auto every = plan_call(config, parser, body);
  ASSERT_TRUE(std::holds_alternative<CallPlan>(every));
  const std::optional<std::uint64_t> exact = std::get<CallPlan>(every).decision.primary.prompt_tokens;
  ASSERT_TRUE(exact.has_value());

  auto lean = plan_call(config, parser, body, nullptr, tracing::CallTrace::kNone, false);
  ASSERT_TRUE(std::holds_alternative<CallPlan>(lean));
  const CallPlan& plan = std::get<CallPlan>(lean);
  EXPECT_EQ(plan.decision.primary.model, "gpt-4o-mini");
  EXPECT_EQ(plan.decision.routing_prompt_tokens, std::get<CallPlan>(every).decision.routing_prompt_tokens);
  EXPECT_EQ(plan.decision.primary.prompt_tokens, std::nullopt);

  RequestParser other;
  EXPECT_EQ(count_chat_prompt_again(other, body, plan, plan.decision.primary.encoding), exact);
}

// A prompt whose bytes exceed the window is counted to decide the fit, and still fits.
TEST(PlanCall, ABoundPastTheWindowIsSettledByTheCount) {
  auto config = test::built_in_config();
  config.models.at("gpt-4o-mini").context_window = 5000;  // ~8,100 bytes, ~1,500 tokens
  RequestParser parser;
  auto lean = plan_call(config, parser, body_with_words(300), nullptr, tracing::CallTrace::kNone, false);
  ASSERT_TRUE(std::holds_alternative<CallPlan>(lean));
  const CallPlan& plan = std::get<CallPlan>(lean);
  EXPECT_EQ(plan.decision.primary.model, "gpt-4o-mini");
  ASSERT_TRUE(plan.decision.primary.prompt_tokens.has_value());
  EXPECT_LT(*plan.decision.primary.prompt_tokens, 5000u);
}

TEST(PlanCall, ErrorsNameTheFieldInOpenAIsShape) {
  const auto config = test::built_in_config();
  RequestParser parser;
  auto bad = plan_call(config, parser, R"({"model":"auto","messages":[]})");
  ASSERT_TRUE(std::holds_alternative<ApiError>(bad));
  EXPECT_EQ(std::get<ApiError>(bad).status, 400u);
  EXPECT_EQ(std::get<ApiError>(bad).param, "messages");
  auto too_long = plan_call(config, parser,
                            R"({"model":"gpt-3.5-turbo","max_tokens":20000,"messages":[{"role":"user","content":"hi"}]})");
  ASSERT_TRUE(std::holds_alternative<ApiError>(too_long));
  EXPECT_EQ(std::get<ApiError>(too_long).code, "context_length_exceeded");
}

TEST(ErrorBody, OpenAIShapeWithNullsForMissingParamAndCode) {
  EXPECT_EQ(error_body(ApiError{404, "Unknown \"x\"", "invalid_request_error", "", ""}),
            R"({"error":{"message":"Unknown \"x\"","type":"invalid_request_error","param":null,"code":null}})");
  const HttpResponse res = error_response(ApiError{429, "slow down", "requests", "", "rate_limit_exceeded"}, 11);
  EXPECT_EQ(res.result_int(), 429u);
  EXPECT_EQ(res[http::field::content_type], "application/json");
  EXPECT_NE(res.body().find(R"("code":"rate_limit_exceeded")"), std::string::npos);
}

}  // namespace
}  // namespace turnout::server
