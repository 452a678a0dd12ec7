// The mock's Responses answers: the chat equivalent of a Responses body (so usage comes
// from the real tokenizer), the response object's usage fields, and the typed event
// sequence ending in response.completed with the same usage.
#include "mock/chat_call.hpp"
#include "mock/chat_reply.hpp"
#include "mock/responses_reply.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace turnout::mock {
namespace {
namespace json = boost::json;

struct Answered {
  json::value chat;
  GeneratedCompletion completion;
};

Answered answer(std::string_view body) {
  Answered answered;
  auto chat = chat_equivalent(json::parse(body));
  if (!chat) {
    ADD_FAILURE() << chat.error().message;
    return answered;
  }
  answered.chat = std::move(*chat);
  auto call = read_chat_call(answered.chat, "gpt-4o");
  if (!call) {
    ADD_FAILURE() << call.error().message;
    return answered;
  }
  answered.completion = generate_completion(*call, ReplySettings{}, {7, 1700000000},
                                            count_prompt_tokens(answered.chat, call->model));
  answered.completion.id = "resp_mock_7";
  return answered;
}

}  // namespace

TEST(MockResponses, TheChatEquivalentCountsLikeTheSameChatRequest) {
  const auto answered = answer(R"({"model":"gpt-4o","instructions":"Be brief.","input":"Hello there"})");
  const auto chat = json::parse(R"({"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},
                                                                 {"role":"user","content":"Hello there"}]})");
  EXPECT_EQ(answered.completion.usage.prompt_tokens, count_prompt_tokens(chat, "gpt-4o"));
  EXPECT_GT(answered.completion.usage.prompt_tokens, 0u);
}

TEST(MockResponses, TheResponseObjectCarriesResponsesUsage) {
  const auto answered = answer(R"({"model":"gpt-4o","input":[{"role":"user","content":[{"type":"input_text","text":"Hi"}]}]})");
  const auto response = json::parse(response_json(answered.completion));
  EXPECT_EQ(response.at("object").as_string(), "response");
  EXPECT_EQ(response.at("id").as_string(), "resp_mock_7");
  EXPECT_EQ(response.at("status").as_string(), "completed");
  const auto& usage = response.at("usage");
  EXPECT_EQ(usage.at("input_tokens").as_int64(), static_cast<std::int64_t>(answered.completion.usage.prompt_tokens));
  EXPECT_EQ(usage.at("output_tokens").as_int64(), static_cast<std::int64_t>(answered.completion.usage.completion_tokens));
  EXPECT_EQ(usage.at("input_tokens_details").at("cached_tokens").as_int64(), 0);
  EXPECT_EQ(usage.at("output_tokens_details").at("reasoning_tokens").as_int64(), 0);
  const auto& message = response.at("output").as_array().at(0);
  EXPECT_EQ(message.at("type").as_string(), "message");
  EXPECT_EQ(message.at("content").as_array().at(0).at("text").as_string(), answered.completion.choices[0].content);
}

TEST(MockResponses, FunctionToolsGetAFunctionCall) {
  const auto answered = answer(R"({"model":"gpt-4o","input":"Weather?","tools":[{"type":"function","name":"get_weather",
      "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]})");
  const auto response = json::parse(response_json(answered.completion));
  const auto& call = response.at("output").as_array().at(0);
  EXPECT_EQ(call.at("type").as_string(), "function_call");
  EXPECT_EQ(call.at("name").as_string(), "get_weather");
  EXPECT_TRUE(json::parse(call.at("arguments").as_string()).as_object().contains("city"));
}

TEST(MockResponses, TheStreamIsTypedAndEndsWithCompletedUsage) {
  const auto answered = answer(R"({"model":"gpt-4o","input":"Tell me a story"})");
  const auto events = response_stream_events(answered.completion, 4, false);
  std::vector<std::string> types;
  std::string text;
  json::value last;
  std::int64_t sequence = 0;
  for (const auto& event : events) {
    const auto data_at = event.text.find("data: ");
    ASSERT_NE(data_at, std::string::npos);
    last = json::parse(event.text.substr(data_at + 6));
    types.emplace_back(last.at("type").as_string());
    EXPECT_EQ(event.text.rfind("event: " + types.back() + "\n", 0), 0u);
    EXPECT_EQ(last.at("sequence_number").as_int64(), sequence++);
    if (types.back() == "response.output_text.delta") text += last.at("delta").as_string();
  }
  EXPECT_EQ(types.front(), "response.created");
  EXPECT_EQ(types.back(), "response.completed");
  EXPECT_EQ(text, answered.completion.choices[0].content);
  EXPECT_EQ(last.at("response").at("usage").at("output_tokens").as_int64(),
            static_cast<std::int64_t>(answered.completion.usage.completion_tokens));
}

}  // namespace turnout::mock
