// Parse and plan stages of POST /v1/responses: every input kind maps onto the chat count
// (so the same text counts the same on both endpoints), items without a published
// formula mark the count as an estimate, continuations mark it partial and stay on the
// default provider, and bad input names the field.
#include "config/config.hpp"
#include "server/chat_request.hpp"
#include "server/responses_plan.hpp"
#include "server/responses_request.hpp"
#include "tokenizer/chat_count.hpp"

#include "built_in_config.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ts = turnout::server;
namespace tk = turnout::tokenizer;
namespace config = turnout::config;

namespace {

ts::RequestError parse_error(std::string_view body) {
  ts::ResponsesRequestParser parser;
  auto result = parser.parse(body);
  EXPECT_TRUE(std::holds_alternative<ts::RequestError>(result)) << body;
  if (auto* e = std::get_if<ts::RequestError>(&result)) return *e;
  return {};
}

std::uint64_t responses_count(std::string_view body, bool* estimated = nullptr, bool* continuation = nullptr) {
  ts::ResponsesRequestParser parser;
  auto result = parser.parse(body);
  if (auto* e = std::get_if<ts::RequestError>(&result)) {
    ADD_FAILURE() << e->message << " for " << body;
    return 0;
  }
  const auto& request = *std::get<const ts::ResponsesRequest*>(result);
  if (estimated) *estimated = request.count_estimated;
  if (continuation) *continuation = request.continuation;
  return tk::count_chat_prompt(tk::Encoding::get(tk::EncodingId::o200k_base), request.prompt,
                               tk::chat_count_options_for_model("gpt-4o"));
}

std::uint64_t chat_count(std::string_view body) {
  ts::RequestParser parser;
  auto result = parser.parse(body);
  if (auto* e = std::get_if<ts::RequestError>(&result)) {
    ADD_FAILURE() << e->message << " for " << body;
    return 0;
  }
  return tk::count_chat_prompt(tk::Encoding::get(tk::EncodingId::o200k_base),
                               std::get<const ts::ChatRequest*>(result)->prompt,
                               tk::chat_count_options_for_model("gpt-4o"));
}

}  // namespace

TEST(ResponsesRequest, AStringInputWithInstructionsCountsAsSystemPlusUser) {
  bool estimated = true;
  const auto count =
      responses_count(R"({"model":"gpt-4o","instructions":"You are terse.","input":"Hello there"})", &estimated);
  EXPECT_EQ(count, chat_count(R"({"messages":[{"role":"system","content":"You are terse."},
                                               {"role":"user","content":"Hello there"}]})"));
  EXPECT_FALSE(estimated);
}

TEST(ResponsesRequest, MessageItemsImagesAndToolsCountAsTheirChatEquivalents) {
  bool estimated = true;
  const auto count = responses_count(R"({"model":"gpt-4o","input":[
      {"role":"user","content":[{"type":"input_text","text":"What is in this picture?"},
                                {"type":"input_image","image_url":"https://example.com/a.png","detail":"low"}]},
      {"type":"message","role":"assistant","content":[{"type":"output_text","text":"A cat."}]},
      {"role":"user","content":"And the weather in Paris?"}],
    "tools":[{"type":"function","name":"get_weather","description":"Weather for a city",
              "parameters":{"type":"object","properties":{"city":{"type":"string","description":"The city"},
                                                          "unit":{"type":"string","enum":["c","f"]}}}}]})",
                                     &estimated);
  EXPECT_EQ(count, chat_count(R"({"messages":[
      {"role":"user","content":[{"type":"text","text":"What is in this picture?"},
                                {"type":"image_url","image_url":{"url":"https://example.com/a.png","detail":"low"}}]},
      {"role":"assistant","content":[{"type":"text","text":"A cat."}]},
      {"role":"user","content":"And the weather in Paris?"}],
    "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather for a city",
              "parameters":{"type":"object","properties":{"city":{"type":"string","description":"The city"},
                                                          "unit":{"type":"string","enum":["c","f"]}}}}}]})"));
  EXPECT_FALSE(estimated);
}

TEST(ResponsesRequest, FunctionCallItemsFilesAndBuiltInToolsAreEstimates) {
  bool estimated = false;
  const auto count = responses_count(R"({"model":"gpt-4o","input":[
      {"role":"user","content":"Weather in Paris?"},
      {"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
      {"type":"function_call_output","call_id":"call_1","output":"18C and sunny"}]})",
                                     &estimated);
  EXPECT_TRUE(estimated);
  EXPECT_EQ(count, chat_count(R"({"messages":[
      {"role":"user","content":"Weather in Paris?"},
      {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
        "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
      {"role":"tool","tool_call_id":"call_1","content":"18C and sunny"}]})"));

  responses_count(R"({"input":[{"role":"user","content":[{"type":"input_file","file_id":"file-1"}]}]})", &estimated);
  EXPECT_TRUE(estimated);
  responses_count(R"({"input":"hi","tools":[{"type":"web_search"}]})", &estimated);
  EXPECT_TRUE(estimated);
  responses_count(R"({"input":"hi"})", &estimated);
  EXPECT_FALSE(estimated);
}

TEST(ResponsesRequest, ContinuationsNeedNoInputAndAreMarked) {
  bool continuation = false;
  responses_count(R"({"model":"gpt-4o","previous_response_id":"resp_1","input":"and then?"})", nullptr, &continuation);
  EXPECT_TRUE(continuation);
  responses_count(R"({"model":"gpt-4o","conversation":"conv_1"})", nullptr, &continuation);
  EXPECT_TRUE(continuation);
}

TEST(ResponsesRequest, BadInputsNameTheField) {
  EXPECT_EQ(parse_error(R"({"model":"gpt-4o"})").param, "input");
  EXPECT_EQ(parse_error(R"({"input":5})").param, "input");
  EXPECT_EQ(parse_error(R"({"input":[3]})").param, "input[0]");
  EXPECT_EQ(parse_error(R"({"input":[{"content":"x"}]})").param, "input[0].role");
  EXPECT_EQ(parse_error(R"({"input":[{"role":"wizard","content":"x"}]})").param, "input[0].role");
  EXPECT_EQ(parse_error(R"({"input":[{"role":"user"}]})").param, "input[0].content");
  EXPECT_EQ(parse_error(R"({"input":[{"role":"user","content":[{"text":"x"}]}]})").param, "input[0].content[0].type");
  EXPECT_EQ(parse_error(R"({"input":[{"role":"user","content":[{"type":"input_text"}]}]})").param,
            "input[0].content[0].text");
  EXPECT_EQ(parse_error(R"({"input":[{"type":"function_call","arguments":"{}"}]})").param, "input[0].name");
  EXPECT_EQ(parse_error(R"({"input":[{"type":"function_call_output","call_id":"c"}]})").param, "input[0].output");
  EXPECT_EQ(parse_error(R"({"input":"x","instructions":7})").param, "instructions");
  EXPECT_EQ(parse_error(R"({"input":"x","tools":[{"type":"function"}]})").param, "tools[0].name");
  EXPECT_EQ(parse_error(R"({"input":"x","tools":{}})").param, "tools");
  EXPECT_EQ(parse_error(R"({"input":"x","stream":"yes"})").param, "stream");
  EXPECT_EQ(parse_error(R"({"input":"x","max_output_tokens":-1})").param, "max_output_tokens");
  EXPECT_EQ(parse_error(R"({"input":"x","model":3})").param, "model");
  EXPECT_EQ(parse_error(R"({"input":"x","previous_response_id":3})").param, "previous_response_id");
}

TEST(ResponsesPlan, RoutesByTiersAndKeepsContinuationsOnTheDefaultProvider) {
  const auto cfg = turnout::test::built_in_config();
  ts::ResponsesRequestParser parser;
  auto planned = ts::plan_responses_call(cfg, parser, R"({"model":"auto","input":"Hello","stream":true})");
  ASSERT_TRUE(std::holds_alternative<ts::CallPlan>(planned));
  const auto& plan = std::get<ts::CallPlan>(planned);
  EXPECT_EQ(plan.operation, ts::kResponsesOperation);
  EXPECT_TRUE(plan.stream);
  EXPECT_FALSE(plan.count_partial);
  EXPECT_EQ(plan.decision.primary.route, cfg.routing.tiers.front().name);

  auto continued = ts::plan_responses_call(cfg, parser, R"({"model":"auto","previous_response_id":"resp_1","input":"more"})");
  ASSERT_TRUE(std::holds_alternative<ts::CallPlan>(continued));
  const auto& continuation = std::get<ts::CallPlan>(continued);
  EXPECT_TRUE(continuation.count_partial);
  EXPECT_EQ(continuation.decision.primary.provider, cfg.default_provider()->name);
  for (const auto& fallback : continuation.decision.fallbacks) EXPECT_EQ(fallback.provider, cfg.default_provider()->name);

  const auto json = ts::input_tokens_json(continuation);
  EXPECT_NE(json.find(R"("object":"response.input_tokens")"), std::string::npos);
  EXPECT_NE(json.find(R"("count_partial":true)"), std::string::npos);
}

TEST(ResponsesPlan, ContextOverflowNamesInput) {
  const auto cfg = turnout::test::built_in_config();
  ts::ResponsesRequestParser parser;
  auto planned = ts::plan_responses_call(cfg, parser, R"({"model":"gpt-4o","input":"hi","max_output_tokens":999999999})");
  ASSERT_TRUE(std::holds_alternative<ts::ApiError>(planned));
  const auto& error = std::get<ts::ApiError>(planned);
  EXPECT_EQ(error.status, 400);
  EXPECT_TRUE(error.param == "input" || error.param == "max_output_tokens") << error.param;
}

// As for chat (chat_request_test.cpp): the gateway reads a key's first copy, an upstream
// its last, so a body with a top-level key twice is refused, naming the key.
TEST(ResponsesRequest, DuplicateTopLevelKeysAreRejectedByName) {
  for (const std::string key : {"model", "input", "stream", "instructions", "max_output_tokens", "tools"}) {
    const std::string value = key == "stream" ? "false" : key == "max_output_tokens" ? "1" : key == "tools" ? "[]"
                                                                                                            : R"("x")";
    const std::string head = key == "input" ? "{" : R"({"input":"hi",)";
    const std::string body = head + "\"" + key + "\":" + value + ",\"" + key + "\":" + value + "}";
    const ts::RequestError e = parse_error(body);
    EXPECT_EQ(e.param, key) << body;
    EXPECT_EQ(e.code, "duplicate_key") << body;
  }
  EXPECT_EQ(parse_error(R"({"input":"hi","stream":true,"\u0073tream":false})").param, "stream");
}
