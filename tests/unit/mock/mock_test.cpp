// `turnout mock-upstream` (docs/REFERENCE.md §7): settings, answer generation, and the server
// over real loopback sockets (an in-process MockServer on a free port).
//
// Prompt-token expectations are the published counts of OpenAI's cookbook notebook
// "How to count tokens with tiktoken" (example_messages: 129 for gpt-3.5-turbo, 124 for
// gpt-4o; the get_current_weather tools example: 101 for gpt-4o), so they check the
// mock's JSON-to-tokenizer wiring against the API's own numbers.
#include "common/json_text.hpp"
#include "mock/chat_call.hpp"
#include "mock/chat_reply.hpp"
#include "mock/mock_server.hpp"
#include "mock/mock_settings.hpp"
#include "tokenizer/tokenizer.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace turnout::mock {
namespace {
namespace json = boost::json;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;

// ---- settings ------------------------------------------------------------------------

TEST(MockSettings, AbsentKeysKeepTheBaseAndNullClears) {
  MockSettings base;
  base.faults.latency_ms = 5;
  base.faults.fail_first = 3;
  auto parsed = settings_from_json(json::parse(R"({"fail_status":429,"fail_first":null,"retry_after":7})"), base);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->faults.latency_ms, 5u);
  EXPECT_EQ(parsed->faults.fail_status, 429u);
  EXPECT_FALSE(parsed->faults.fail_first);
  EXPECT_EQ(parsed->faults.retry_after, "7");
}

TEST(MockSettings, RejectsUnknownKeysAndOutOfRangeValues) {
  const MockSettings base;
  for (const char* body : {R"({"fail_stat":500})", R"({"fail_rate":1.5})", R"({"fail_status":200})",
                           R"({"chunks":0})", R"({"latency_ms":-1})", R"({"hang":"yes"})", R"([])"}) {
    SCOPED_TRACE(body);
    EXPECT_FALSE(settings_from_json(json::parse(body), base));
  }
  auto unknown = settings_from_json(json::parse(R"({"fail_stat":500})"), base);
  EXPECT_NE(unknown.error().message.find("fail_stat"), std::string::npos) << "the error names the key";
}

TEST(MockSettings, FailFirstPicksTheFirstCallsThenTheRate) {
  FaultSettings faults;
  EXPECT_TRUE(faults.selects(0, 0.99)) << "no selector: every call";
  faults.fail_first = 2;
  EXPECT_TRUE(faults.selects(0, 0.99));
  EXPECT_TRUE(faults.selects(1, 0.99));
  EXPECT_FALSE(faults.selects(2, 0.0));
  faults.fail_rate = 0.25;
  EXPECT_TRUE(faults.selects(2, 0.2));
  EXPECT_FALSE(faults.selects(2, 0.3));
}

// ---- request reading -----------------------------------------------------------------

TEST(MockRequest, LoneSurrogatesAreRepairedPairsAreKept) {
  std::string text = R"(["\ud800x", "\udc00", "\ud83d\ude00", "\\ud800"])";
  EXPECT_TRUE(turnout::replace_lone_surrogate_escapes(text));
  EXPECT_EQ(text, R"(["\uFFFDx", "\uFFFD", "\ud83d\ude00", "\\ud800"])");
  for (std::string_view lone : {"\\udc00", "\\ud800", "\\ud800\\ud800"}) {
    SCOPED_TRACE(lone);
    auto parsed = parse_json_body(R"({"s":"a)" + std::string(lone) + R"( b"})");
    ASSERT_TRUE(parsed);
    std::string expected = "a";
    for (std::size_t i = 0; i < lone.size() / 6; ++i) expected += "\xEF\xBF\xBD";
    EXPECT_EQ(parsed->at("s").as_string(), expected + " b");
  }
}

TEST(MockRequest, ValidationNamesTheParameter) {
  const auto param_of = [](std::string_view body) {
    auto root = parse_json_body(body);
    if (!root) return std::string("<json>");
    auto call = read_chat_call(*root, "");
    return call ? std::string("<ok>") : call.error().param;
  };
  EXPECT_EQ(param_of(R"({"model":"m","messages":[]})"), "messages");
  EXPECT_EQ(param_of(R"({"model":"m"})"), "messages");
  EXPECT_EQ(param_of(R"({"messages":[{"role":"user","content":"hi"}]})"), "model");
  EXPECT_EQ(param_of(R"({"model":"m","messages":[{"content":"hi"}]})"), "messages[0].role");
  EXPECT_EQ(param_of(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"n":0})"), "n");
  EXPECT_EQ(param_of(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})"), "<ok>");
  EXPECT_EQ(param_of(R"({"model":"m",)"), "<json>");
}

TEST(MockRequest, ToolChoiceSelectsTheFunction) {
  const auto tool_of = [](std::string_view extra) {
    auto root = parse_json_body(std::string(R"({"model":"m","messages":[{"role":"user","content":"hi"}],)"
                                            R"("tools":[{"type":"function","function":{"name":"a"}},)"
                                            R"({"type":"function","function":{"name":"b"}}])") +
                                std::string(extra) + "}");
    auto call = read_chat_call(*root, "");
    return call->tool ? std::string(call->tool->name) : std::string("<none>");
  };
  EXPECT_EQ(tool_of(""), "a");
  EXPECT_EQ(tool_of(R"(,"tool_choice":"auto")"), "a");
  EXPECT_EQ(tool_of(R"(,"tool_choice":"none")"), "<none>");
  EXPECT_EQ(tool_of(R"(,"tool_choice":{"type":"function","function":{"name":"b"}})"), "b");
}

// ---- answers -------------------------------------------------------------------------

TEST(MockReply, StreamPiecesReassembleTheText) {
  const std::string text = "Mock answer to: caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC and more words here";
  for (std::uint32_t parts : {1u, 3u, 8u, 40u, 1000u}) {
    SCOPED_TRACE(parts);
    const auto pieces = split_for_stream(text, parts);
    std::string joined;
    for (auto piece : pieces) {
      EXPECT_FALSE(piece.empty());
      EXPECT_NE(static_cast<unsigned char>(piece.front()) & 0xC0, 0x80u) << "no piece starts mid-character";
      joined += piece;
    }
    EXPECT_EQ(joined, text);
    const auto characters = static_cast<std::size_t>(
        std::count_if(text.begin(), text.end(), [](char ch) { return (static_cast<unsigned char>(ch) & 0xC0) != 0x80; }));
    EXPECT_EQ(pieces.size(), std::min<std::size_t>(parts, characters));
  }
}

TEST(MockReply, AnswerQuotesTheLastUserMessageAndPads) {
  ChatCall call;
  call.last_user_text = "0123456789012345678901234567890123456789-cut here";
  EXPECT_EQ(answer_text(call, 0, 0), "Mock answer to: 0123456789012345678901234567890123456789");
  EXPECT_EQ(answer_text(call, 1, 0), "Mock answer 2 to: 0123456789012345678901234567890123456789");
  const std::string padded = answer_text(call, 0, 10);
  EXPECT_EQ(std::count(padded.begin(), padded.end(), ' '), 9) << padded;
}

TEST(MockReply, MaxTokensCutsTheAnswerWithFinishReasonLength) {
  ChatCall call;
  call.model = "gpt-4o";
  call.last_user_text = "please say a lot";
  call.max_output_tokens = 3;
  ReplySettings reply;
  reply.completion_words = 50;
  const auto completion = generate_completion(call, reply, {1, 0}, 10);
  EXPECT_EQ(completion.choices.at(0).finish_reason, "length");
  EXPECT_EQ(completion.usage.completion_tokens, 3u);
  const auto& o200k = tokenizer::Encoding::get(tokenizer::EncodingId::o200k_base);
  EXPECT_EQ(o200k.count(completion.choices[0].content), 3u);
}

std::vector<json::value> event_payloads(const std::vector<StreamEvent>& events, std::string* done = nullptr) {
  std::vector<json::value> payloads;
  for (const auto& event : events) {
    EXPECT_TRUE(event.text.starts_with("data: ") && event.text.ends_with("\n\n")) << event.text;
    const auto data = std::string_view(event.text).substr(6, event.text.size() - 8);
    if (data == "[DONE]") {
      if (done) *done = data;
      continue;
    }
    payloads.push_back(json::parse(data));
  }
  return payloads;
}

TEST(MockReply, StreamCarriesTheSameAnswerAndUsageOnlyWhenAsked) {
  ChatCall call;
  call.model = "gpt-4o-mini";
  call.last_user_text = "tell me something";
  call.n = 2;
  const auto completion = generate_completion(call, ReplySettings{}, {7, 100}, 42);
  for (bool include_usage : {false, true}) {
    SCOPED_TRACE(include_usage);
    const auto events = stream_events(completion, {.chunks = 4, .include_usage = include_usage});
    std::string done;
    const auto payloads = event_payloads(events, &done);
    EXPECT_EQ(done, "[DONE]");
    EXPECT_EQ(events.back().text, "data: [DONE]\n\n");
    std::string content[2];
    std::size_t usage_chunks = 0, paced = 0;
    for (const auto& event : events) paced += event.paced;
    for (const auto& payload : payloads) {
      EXPECT_EQ(payload.at("id"), "chatcmpl-mock-7");
      EXPECT_EQ(payload.at("object"), "chat.completion.chunk");
      if (payload.as_object().contains("usage") && !payload.at("usage").is_null()) {
        ++usage_chunks;
        EXPECT_TRUE(payload.at("choices").as_array().empty());
        EXPECT_EQ(payload.at("usage").at("prompt_tokens"), 42);
        EXPECT_EQ(payload.at("usage").at("completion_tokens").as_int64(),
                  static_cast<std::int64_t>(completion.usage.completion_tokens));
        continue;
      }
      const auto& choice = payload.at("choices").at(0);
      const auto& delta = choice.at("delta").as_object();
      if (const auto* text = delta.if_contains("content"); text && text->is_string())
        content[choice.at("index").as_int64()] += text->as_string();
    }
    EXPECT_EQ(usage_chunks, include_usage ? 1u : 0u);
    EXPECT_EQ(paced, 4u) << "one paced step per content chunk";
    EXPECT_EQ(content[0], completion.choices[0].content);
    EXPECT_EQ(content[1], completion.choices[1].content);
    EXPECT_NE(content[0], content[1]);
  }
}

// ---- the server over real sockets ----------------------------------------------------

struct Reply {
  unsigned status = 0;  // 0: no response head arrived
  http::fields headers;
  std::string body;
  boost::system::error_code error;

  json::value json() const { return json::parse(body); }
};

// One keep-alive HTTP/1.1 connection to the mock, with a deadline on every call.
class Client {
 public:
  explicit Client(std::uint16_t port) : stream_(io_) {
    stream_.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  }

  Reply call(http::verb verb, std::string target, std::string body = {}, std::chrono::milliseconds deadline = 5s) {
    http::request<http::string_body> request{verb, target, 11};
    request.set(http::field::host, "127.0.0.1");
    request.set(http::field::content_type, "application/json");
    request.set("X-Test-Header", "Value-1");
    request.body() = std::move(body);
    request.prepare_payload();
    http::write(stream_.socket(), request);

    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    Reply reply;
    stream_.expires_after(deadline);
    http::async_read(stream_, buffer_, parser, [&](boost::system::error_code ec, std::size_t) { reply.error = ec; });
    io_.restart();
    io_.run();
    if (parser.is_header_done()) {
      reply.status = parser.get().result_int();
      reply.headers = parser.get().base();
    }
    reply.body = parser.get().body();
    return reply;
  }

  Reply post(std::string target, const json::value& body) {
    return call(http::verb::post, std::move(target), json::serialize(body));
  }

 private:
  net::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

const json::value kNotebookMessages = json::parse(R"([
  {"role":"system","content":"You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
  {"role":"system","name":"example_user","content":"New synergies will help drive top-line growth."},
  {"role":"system","name":"example_assistant","content":"Things working well together will increase revenue."},
  {"role":"system","name":"example_user","content":"Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
  {"role":"system","name":"example_assistant","content":"Let's talk later when we're less busy about how to do better."},
  {"role":"user","content":"This late pivot means we don't have time to boil the ocean for the client deliverable."}
])");

json::object chat_body(std::string_view model, bool stream = false) {
  json::object body{{"model", model}, {"messages", kNotebookMessages}};
  if (stream) body["stream"] = true;
  return body;
}

class MockServerTest : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }

  void start(MockSettings settings, RecordingLimits limits = {}) {
    server_.reset();
    ServerOptions options;
    options.port = 0;
    options.threads = 2;
    options.recording = limits;
    auto started = MockServer::start(options, std::move(settings));
    ASSERT_TRUE(started) << started.error().message;
    server_ = std::move(*started);
  }

  Client client() const { return Client(server_->port()); }

  void configure(std::string_view settings) {
    const auto reply = client().call(http::verb::post, "/_mock/config", std::string(settings));
    ASSERT_EQ(reply.status, 200u) << reply.body;
  }

  std::unique_ptr<MockServer> server_;
};

TEST_F(MockServerTest, CompletionHasTheOpenAIShapeAndRealUsage) {
  auto c = client();
  for (const auto& [model, prompt_tokens] : {std::pair{"gpt-3.5-turbo", 129}, std::pair{"gpt-4o", 124}}) {
    SCOPED_TRACE(model);
    const auto reply = c.post("/v1/chat/completions", chat_body(model));
    ASSERT_EQ(reply.status, 200u) << reply.body;
    EXPECT_EQ(reply.headers[http::field::content_type], "application/json");
    const auto body = reply.json();
    EXPECT_TRUE(body.at("id").as_string().starts_with("chatcmpl-mock-"));
    EXPECT_EQ(body.at("object"), "chat.completion");
    EXPECT_EQ(body.at("model"), model);
    const auto& choice = body.at("choices").at(0);
    EXPECT_EQ(choice.at("finish_reason"), "stop");
    EXPECT_EQ(choice.at("message").at("role"), "assistant");
    const auto content = std::string(choice.at("message").at("content").as_string());
    EXPECT_EQ(content, "Mock answer to: This late pivot means we don't have time");
    const auto& usage = body.at("usage");
    EXPECT_EQ(usage.at("prompt_tokens"), prompt_tokens);
    const auto& encoding = tokenizer::Encoding::get(
        tokenizer::encoding_for_model(model, tokenizer::EncodingId::cl100k_base));
    EXPECT_EQ(usage.at("completion_tokens").as_int64(), static_cast<std::int64_t>(encoding.count(content)));
    EXPECT_EQ(usage.at("total_tokens").as_int64(),
              usage.at("prompt_tokens").as_int64() + usage.at("completion_tokens").as_int64());
    EXPECT_EQ(usage.at("prompt_tokens_details").at("cached_tokens"), 0);
  }
}

TEST_F(MockServerTest, ToolsGetACallToTheFunctionWithSchemaArguments) {
  auto body = json::parse(R"({
    "model": "gpt-4o", "n": 2,
    "messages": [
      {"role":"system","content":"You are a helpful assistant that can answer to questions about the weather."},
      {"role":"user","content":"What's the weather like in San Francisco?"}],
    "tools": [{"type":"function","function":{"name":"get_current_weather",
      "description":"Get the current weather in a given location",
      "parameters":{"type":"object","properties":{
        "location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"},
        "unit":{"type":"string","description":"The unit of temperature to return","enum":["celsius","fahrenheit"]}},
        "required":["location"]}}}]})");
  const auto reply = client().post("/v1/chat/completions", body);
  ASSERT_EQ(reply.status, 200u) << reply.body;
  const auto answer = reply.json();
  EXPECT_EQ(answer.at("usage").at("prompt_tokens"), 101);
  ASSERT_EQ(answer.at("choices").as_array().size(), 2u);
  for (const auto& choice : answer.at("choices").as_array()) {
    EXPECT_EQ(choice.at("finish_reason"), "tool_calls");
    const auto& call = choice.at("message").at("tool_calls").at(0);
    EXPECT_EQ(call.at("function").at("name"), "get_current_weather");
    EXPECT_EQ(json::parse(call.at("function").at("arguments").as_string()),
              json::parse(R"({"location":"mock","unit":"celsius"})"));
  }
}

TEST_F(MockServerTest, FailFirstFailsThenSucceedsWithRetryAfter) {
  configure(R"({"fail_status":429,"fail_first":2,"retry_after":3})");
  auto c = client();
  for (int attempt = 0; attempt < 2; ++attempt) {
    const auto reply = c.post("/v1/chat/completions", chat_body("gpt-4o"));
    EXPECT_EQ(reply.status, 429u);
    EXPECT_EQ(reply.headers[http::field::retry_after], "3");
    EXPECT_EQ(reply.json().at("error").at("code"), "rate_limit_exceeded");
  }
  EXPECT_EQ(c.post("/v1/chat/completions", chat_body("gpt-4o")).status, 200u);
  configure(R"({"fail_status":500,"fail_first":1})");
  EXPECT_EQ(c.post("/v1/chat/completions", chat_body("gpt-4o")).status, 500u) << "a new config counts again";
}

TEST_F(MockServerTest, FaultModelsLimitTheFaultsToThoseModels) {
  configure(R"({"fail_status":503,"fault_models":["gpt-4o"]})");
  auto c = client();
  EXPECT_EQ(c.post("/v1/chat/completions", chat_body("gpt-4o")).status, 503u);
  EXPECT_EQ(c.post("/v1/chat/completions", chat_body("gpt-4o-mini")).status, 200u);
  const auto stats = c.call(http::verb::get, "/_mock/stats").json();
  EXPECT_EQ(stats.at("chat_calls_by_model").at("gpt-4o"), 1);
  EXPECT_EQ(stats.at("chat_calls_by_model").at("gpt-4o-mini"), 1);
  EXPECT_EQ(stats.at("faults_injected"), 1);
}

TEST_F(MockServerTest, HtmlErrorsMalformedBodiesAndBadRequests) {
  auto c = client();
  configure(R"({"html_error":true})");
  auto html = c.post("/v1/chat/completions", chat_body("gpt-4o"));
  EXPECT_EQ(html.status, 502u);
  EXPECT_EQ(html.headers[http::field::content_type], "text/html");
  EXPECT_NE(html.body.find("<html>"), std::string::npos);

  configure(R"({"malformed":true})");
  auto malformed = c.post("/v1/chat/completions", chat_body("gpt-4o"));
  EXPECT_EQ(malformed.status, 200u);
  boost::system::error_code ec;
  json::parse(malformed.body, ec);
  EXPECT_TRUE(ec) << "the body is not valid JSON";

  c.call(http::verb::post, "/_mock/reset");
  auto bad = c.call(http::verb::post, "/v1/chat/completions", R"({"model":"gpt-4o","messages":)");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_EQ(bad.json().at("error").at("type"), "invalid_request_error");
  auto invalid_config = c.call(http::verb::post, "/_mock/config", R"({"no_such_setting":1})");
  EXPECT_EQ(invalid_config.status, 400u);
  EXPECT_EQ(c.call(http::verb::get, "/v1/nowhere").status, 404u);
}

TEST_F(MockServerTest, HangNeverAnswers) {
  configure(R"({"hang":true,"fail_first":1})");
  const auto hung = client().call(http::verb::post, "/v1/chat/completions", json::serialize(chat_body("gpt-4o")), 300ms);
  EXPECT_EQ(hung.status, 0u);
  EXPECT_EQ(hung.error, beast::error::timeout);
  EXPECT_EQ(client().post("/v1/chat/completions", chat_body("gpt-4o")).status, 200u) << "only the first call hangs";
}

TEST_F(MockServerTest, StreamsSseWithUsageWhenAsked) {
  configure(R"({"chunks":5})");
  auto body = chat_body("gpt-4o", true);
  body["stream_options"] = json::object{{"include_usage", true}};
  const auto reply = client().post("/v1/chat/completions", body);
  ASSERT_EQ(reply.status, 200u);
  EXPECT_EQ(reply.headers[http::field::transfer_encoding], "chunked");
  EXPECT_TRUE(reply.headers[http::field::content_type].starts_with("text/event-stream"));
  EXPECT_TRUE(reply.body.ends_with("data: [DONE]\n\n"));
  std::string content;
  std::size_t content_chunks = 0;
  json::value usage;
  for (std::size_t pos = 0; pos < reply.body.size();) {
    const auto end = reply.body.find("\n\n", pos);
    const auto data = std::string_view(reply.body).substr(pos + 6, end - pos - 6);
    pos = end + 2;
    if (data == "[DONE]") break;
    const auto chunk = json::parse(data);
    if (!chunk.at("usage").is_null()) usage = chunk.at("usage");
    if (chunk.at("choices").as_array().empty()) continue;
    const auto* text = chunk.at("choices").at(0).at("delta").as_object().if_contains("content");
    if (text && text->is_string() && !text->as_string().empty()) {
      content += text->as_string();
      ++content_chunks;
    }
  }
  EXPECT_EQ(content, "Mock answer to: This late pivot means we don't have time");
  EXPECT_EQ(content_chunks, 5u);
  EXPECT_EQ(usage.at("prompt_tokens"), 124);
}

std::size_t count_events(std::string_view body) {
  std::size_t events = 0;
  for (std::size_t pos = 0; (pos = body.find("data: ", pos)) != std::string_view::npos; pos += 6) ++events;
  return events;
}

TEST_F(MockServerTest, ResetAfterChunksCutsTheConnection) {
  configure(R"({"reset_after_chunks":3})");
  const auto reply = client().post("/v1/chat/completions", chat_body("gpt-4o", true));
  EXPECT_EQ(reply.status, 200u);
  EXPECT_EQ(count_events(reply.body), 3u);
  EXPECT_EQ(reply.error, net::error::connection_reset) << reply.error.message();
}

TEST_F(MockServerTest, StallAfterChunksGoesSilent) {
  configure(R"({"stall_after_chunks":2})");
  const auto reply = client().call(http::verb::post, "/v1/chat/completions",
                                   json::serialize(chat_body("gpt-4o", true)), 400ms);
  EXPECT_EQ(reply.status, 200u);
  EXPECT_EQ(count_events(reply.body), 2u);
  EXPECT_EQ(reply.error, beast::error::timeout);
}

TEST_F(MockServerTest, MalformedStreamEventAndNoUsage) {
  configure(R"({"malformed":true,"no_usage":true})");
  auto body = chat_body("gpt-4o", true);
  body["stream_options"] = json::object{{"include_usage", true}};
  const auto reply = client().post("/v1/chat/completions", body);
  std::size_t invalid = 0;
  for (std::size_t pos = 0; (pos = reply.body.find("data: ", pos)) != std::string::npos;) {
    const auto end = reply.body.find("\n\n", pos);
    const auto data = std::string_view(reply.body).substr(pos + 6, end - pos - 6);
    boost::system::error_code ec;
    const auto chunk = json::parse(data, ec);
    if (ec) {
      ++invalid;
    } else if (const auto* usage = chunk.as_object().if_contains("usage")) {
      EXPECT_TRUE(usage->is_null()) << "no usage chunk";
    }
    pos = end;
  }
  EXPECT_EQ(invalid, 2u) << "the malformed event (and [DONE], which is not JSON)";
}

TEST_F(MockServerTest, RecordsRequestsBoundedWithLowercasedHeaders) {
  start({}, RecordingLimits{.max_requests = 2});
  auto c = client();
  for (const char* model : {"m1", "m2", "m3"}) c.post("/v1/chat/completions", chat_body(model));
  const auto recorded = c.call(http::verb::get, "/_mock/requests").json().at("requests").as_array();
  ASSERT_EQ(recorded.size(), 2u) << "only the newest two are kept";
  const auto& last = recorded.back();
  EXPECT_EQ(last.at("method"), "POST");
  EXPECT_EQ(last.at("target"), "/v1/chat/completions");
  EXPECT_EQ(last.at("headers").at("x-test-header"), "Value-1");
  EXPECT_EQ(json::parse(last.at("body").as_string()).at("model"), "m3");
  EXPECT_GT(last.at("time").to_number<double>(), 1.7e9);
  c.call(http::verb::delete_, "/_mock/requests");
  EXPECT_TRUE(c.call(http::verb::get, "/_mock/requests").json().at("requests").as_array().empty());
}

TEST_F(MockServerTest, AzureDeploymentPathNeedsApiVersion) {
  auto c = client();
  json::object body{{"messages", kNotebookMessages}};
  EXPECT_EQ(c.post("/openai/deployments/my-4o/chat/completions", body).status, 404u);
  const auto reply = c.post("/openai/deployments/my-4o/chat/completions?api-version=2024-10-21", body);
  ASSERT_EQ(reply.status, 200u) << reply.body;
  EXPECT_EQ(reply.json().at("model"), "my-4o") << "the deployment names the model";
}

TEST_F(MockServerTest, ResetRestoresStartupSettings) {
  MockSettings startup;
  startup.faults.latency_ms = 1;
  start(startup);
  auto c = client();
  configure(R"({"fail_status":500})");
  EXPECT_EQ(c.call(http::verb::get, "/_mock/config").json().at("config").at("latency_ms"), 1)
      << "absent keys keep the start-up value";
  c.call(http::verb::post, "/_mock/reset");
  EXPECT_TRUE(c.call(http::verb::get, "/_mock/config").json().at("config").at("fail_status").is_null());
  EXPECT_EQ(c.post("/v1/chat/completions", chat_body("gpt-4o")).status, 200u);
  EXPECT_EQ(c.call(http::verb::get, "/v1/models").json().at("object"), "list");
}

}  // namespace
}  // namespace turnout::mock
