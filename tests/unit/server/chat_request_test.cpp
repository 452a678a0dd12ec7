// Parse stage: validation errors name the field, views carry what counting needs, and the
// forwarded body keeps every member the gateway does not interpret byte for byte.
#include "server/chat_request.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

namespace ts = turnout::server;

namespace {

ts::RequestError parse_error(ts::RequestParser& parser, std::string_view body) {
  auto result = parser.parse(body);
  EXPECT_TRUE(std::holds_alternative<ts::RequestError>(result)) << body;
  if (auto* e = std::get_if<ts::RequestError>(&result)) return *e;
  return {};
}

const ts::ChatRequest& parse_ok(ts::RequestParser& parser, std::string_view body) {
  auto result = parser.parse(body);
  if (auto* e = std::get_if<ts::RequestError>(&result)) ADD_FAILURE() << e->message << " for " << body;
  static ts::ChatRequest empty;
  return std::holds_alternative<const ts::ChatRequest*>(result) ? *std::get<const ts::ChatRequest*>(result) : empty;
}

}  // namespace

TEST(ChatRequest, ChoicesAreReadAndBounded) {
  ts::RequestParser p;
  const std::string messages = R"("messages":[{"role":"user","content":"hi"}])";
  EXPECT_EQ(parse_ok(p, "{" + messages + "}").choices, 1u);
  EXPECT_EQ(parse_ok(p, "{" + messages + R"(,"n":3})").choices, 3u);
  EXPECT_EQ(parse_ok(p, "{" + messages + R"(,"n":null})").choices, 1u);
  for (const char* bad : {R"("n":0)", R"("n":129)", R"("n":-1)", R"("n":"2")", R"("n":1.5)"}) {
    EXPECT_EQ(parse_error(p, "{" + messages + "," + bad + "}").param, "n") << bad;
  }
}

TEST(ChatRequest, BadInputsNameTheField) {
  ts::RequestParser p;
  EXPECT_EQ(parse_error(p, "{not json").code, "invalid_json");
  EXPECT_EQ(parse_error(p, "[1,2]").code, "invalid_type");
  EXPECT_EQ(parse_error(p, "{}").param, "messages");
  EXPECT_EQ(parse_error(p, R"({"messages":"hi"})").param, "messages");
  EXPECT_EQ(parse_error(p, R"({"messages":[]})").param, "messages");
  EXPECT_EQ(parse_error(p, R"({"messages":[1]})").param, "messages[0]");
  EXPECT_EQ(parse_error(p, R"({"messages":[{"content":"x"}]})").param, "messages[0].role");
  EXPECT_EQ(parse_error(p, R"({"messages":[{"role":"wizard","content":"x"}]})").param, "messages[0].role");
  EXPECT_EQ(parse_error(p, R"({"messages":[{"role":"user","content":"a"},{"role":"user","content":5}]})").param,
            "messages[1].content");
  EXPECT_EQ(parse_error(p, R"({"messages":[{"role":"user"}]})").param, "messages[0].content");
  EXPECT_EQ(parse_error(p, R"({"messages":[{"role":"user","content":[{"type":"text","text":3}]}]})").param,
            "messages[0].content[0].text");
  EXPECT_EQ(parse_error(p, R"({"model":5,"messages":[{"role":"user","content":"x"}]})").param, "model");
  EXPECT_EQ(parse_error(p, R"({"stream":"yes","messages":[{"role":"user","content":"x"}]})").param, "stream");
  EXPECT_EQ(parse_error(p, R"({"max_tokens":-1,"messages":[{"role":"user","content":"x"}]})").param, "max_tokens");
  EXPECT_EQ(parse_error(p, R"({"max_tokens":"9","messages":[{"role":"user","content":"x"}]})").param, "max_tokens");
  EXPECT_EQ(parse_error(p, R"({"tools":{},"messages":[{"role":"user","content":"x"}]})").param, "tools");
  EXPECT_EQ(parse_error(p, "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}").code, "invalid_utf8");
}

TEST(ChatRequest, ViewsCarryWhatCountingNeeds) {
  ts::RequestParser p;
  const auto& r = parse_ok(p, R"({"model":"auto","max_tokens":10,"max_completion_tokens":20,"stream":true,
    "stream_options":{"include_usage":true},
    "messages":[{"role":"system","content":"be brief","name":"sys"},
                {"role":"user","content":[{"type":"text","text":"look"},
                   {"type":"image_url","image_url":{"url":"https://x/y.png","detail":"low"}}]},
                {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",
                   "function":{"name":"get","arguments":"{\"a\":1}"}}]},
                {"role":"tool","tool_call_id":"c1","content":"42"}],
    "tools":[{"type":"function","function":{"name":"get","description":"Get it.",
       "parameters":{"type":"object","properties":{"a":{"type":"string","description":"A","enum":["x","y"]}}}}}]})");
  ASSERT_TRUE(r.model);
  EXPECT_EQ(*r.model, "auto");
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.requested_output_tokens, 20u);  // max_completion_tokens wins over max_tokens
  ASSERT_EQ(r.prompt.messages.size(), 4u);
  EXPECT_EQ(*r.prompt.messages[0].name, "sys");
  ASSERT_EQ(r.prompt.messages[1].parts.size(), 2u);
  EXPECT_EQ(r.prompt.messages[1].parts[0].text, "look");
  EXPECT_EQ(r.prompt.messages[1].parts[1].image_url, "https://x/y.png");
  EXPECT_EQ(r.prompt.messages[1].parts[1].detail, turnout::tokenizer::ImageDetail::low);
  ASSERT_EQ(r.prompt.messages[2].tool_calls.size(), 1u);
  EXPECT_EQ(r.prompt.messages[2].tool_calls[0].arguments, R"({"a":1})");
  EXPECT_EQ(*r.prompt.messages[3].tool_call_id, "c1");
  ASSERT_EQ(r.prompt.tools.size(), 1u);
  ASSERT_EQ(r.prompt.tools[0].properties.size(), 1u);
  EXPECT_EQ(r.prompt.tools[0].properties[0].enum_values.size(), 2u);
}

TEST(ChatRequest, LoneSurrogateEscapesReadAsReplacementCharacter) {
  ts::RequestParser p;
  const auto& r = parse_ok(p, R"({"messages":[{"role":"user","content":"a\ud800b\udc00c\ud83d\ude00"}]})");
  ASSERT_EQ(r.prompt.messages.size(), 1u);
  EXPECT_EQ(*r.prompt.messages[0].content, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c\xF0\x9F\x98\x80");
}

TEST(ChatRequest, ReplaceLoneSurrogatesKeepsPairsAndEscapedBackslashes) {
  std::string s = R"({"a":"\\ud800 \ud800\udc00 \udfff"})";
  EXPECT_TRUE(ts::replace_lone_surrogate_escapes(s));
  EXPECT_EQ(s, R"({"a":"\\ud800 \ud800\udc00 \uFFFD"})");
}

TEST(ChatRequest, RewriteKeepsOtherMembersByteForByte) {
  const std::string body =
      R"( {"model" : "auto", "temperature":0.70, "tools":[{"x":"}]{"}], "n":2,"m\u006fdel":"dup", "metadata":{"k":"v"} } )";
  const std::string out = ts::rewrite_top_level(body, {"model"}, R"("model":"gpt-4o")");
  EXPECT_EQ(out, R"({"temperature":0.70,"tools":[{"x":"}]{"}],"n":2,"metadata":{"k":"v"},"model":"gpt-4o"})");
  simdjson::dom::parser parser;
  EXPECT_FALSE(parser.parse(out).error());
}

// Strings are skipped by looking for the next quote (issue 16): a quote after an odd run
// of backslashes is inside the string, after an even run it ends it.
TEST(ChatRequest, RewriteSkipsEscapedQuotesAndBackslashRuns) {
  const std::string messages =
      R"("messages":[{"role":"user","content":"a \"b\" c\\\\\" d\\\\ \\\\\\\"e\" ,\"model\":\"no\"}"}])";
  const std::string body = "{" + messages + R"(,"k":"\\","model":"auto","s":"\\\\","t":"x\"}"})";
  const std::string out = ts::rewrite_top_level(body, {"model"}, R"("model":"m")");
  EXPECT_EQ(out, "{" + messages + R"(,"k":"\\","s":"\\\\","t":"x\"}","model":"m"})");
  simdjson::dom::parser parser;
  EXPECT_FALSE(parser.parse(out).error()) << out;
  // A string left open runs to the end of the text.
  EXPECT_EQ(ts::rewrite_top_level(R"({"a":"x\"})", {"model"}, ""), R"({"a":"x\"}})");
}

TEST(ChatRequest, JsonStringEscaping) {
  std::string out;
  ts::append_json_string(out, std::string("a\"b\\c\n\x01", 7));
  EXPECT_EQ(out, R"("a\"b\\c\n\u0001")");
}

TEST(ChatRequest, DuplicateTopLevelKeysAreRejectedByName) {
  ts::RequestParser p;
  const std::string messages = R"("messages":[{"role":"user","content":"hi"}])";
  for (const std::string key : {"model", "messages", "stream", "stream_options", "max_tokens", "temperature"}) {
    const std::string value = key == "messages" ? R"([{"role":"user","content":"x"}])"
                              : key == "stream_options" ? R"({"include_usage":true})"
                              : key == "model" ? R"("gpt-4o")"
                              : key == "stream" ? "false" : "1";
    const std::string body = "{" + messages + ",\"" + key + "\":" + value + ",\"" + key + "\":" + value + "}";
    const ts::RequestError e = parse_error(p, body);
    EXPECT_EQ(e.param, key) << body;
    EXPECT_EQ(e.code, "duplicate_key") << body;
    EXPECT_NE(e.message.find("'" + key + "'"), std::string::npos) << e.message;
  }
  // However spelt: "\u0073tream" is "stream".
  EXPECT_EQ(parse_error(p, "{" + messages + R"(,"stream":true,"\u0073tream":false})").param, "stream");
  // Keys inside nested objects are not the request's business.
  parse_ok(p, R"({"messages":[{"role":"user","content":"hi"}],"metadata":{"a":1,"a":2}})");
}

TEST(ChatRequest, RewriteNeverForwardsASecondCopy) {
  const std::string body = R"({"stream":true,"n":1,"\u0073tream":false,"n":2,"messages":[],"str\u0065am":0})";
  const std::string out = ts::rewrite_top_level(body, {"model"}, R"("model":"m")");
  EXPECT_EQ(out, R"({"stream":true,"n":1,"messages":[],"model":"m"})");
}
