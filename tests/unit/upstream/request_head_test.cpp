// The upstream request head written as text (request_head.hpp) against what Beast's
// serializer wrote for the same request before it, byte for byte.
#include "upstream/client.hpp"
#include "upstream/request_head.hpp"

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/span_body.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace {

namespace http = boost::beast::http;
namespace upstream = turnout::upstream;

// The message the client built for Beast to write (the code this writer replaced).
std::string beast_head(const upstream::Request& request) {
  http::request<http::span_body<const char>> message{request.method, request.target, 11};
  message.set(http::field::user_agent, "turnout");
  for (const auto& [name, value] : request.headers) message.set(name, value);
  const upstream::Endpoint& endpoint = *request.endpoint;
  std::string host = endpoint.host.find(':') != std::string::npos ? "[" + endpoint.host + "]" : endpoint.host;
  if (endpoint.port != (endpoint.tls ? "443" : "80")) host += ":" + endpoint.port;
  message.set(http::field::host, host);
  message.keep_alive(true);
  message.body() = {request.body.data(), request.body.size()};
  message.prepare_payload();
  http::request_serializer<http::span_body<const char>> serializer{message};
  serializer.split(true);
  std::string text;
  boost::beast::error_code ec;
  while (!ec && !serializer.is_header_done()) {
    serializer.next(ec, [&](boost::beast::error_code&, const auto& buffers) {
      text += boost::beast::buffers_to_string(buffers);
      serializer.consume(boost::beast::buffer_bytes(buffers));
    });
  }
  return text;
}

std::string text_head(const upstream::Request& request) {
  std::string text = "left over ";  // appended to, never cleared
  upstream::detail::append_request_head(text, request);
  return text.substr(10);
}

class RequestHeadTest : public ::testing::Test {
 protected:
  upstream::Request chat(const upstream::Endpoint& endpoint, std::string body = R"({"model":"m"})") {
    return upstream::make_chat_request(provider_, endpoint, "gpt-4o", std::move(body), "req-123");
  }
  turnout::config::ProviderConfig provider_;
  upstream::Endpoint openai_{true, "api.openai.com", "443", "/v1"};
};

TEST_F(RequestHeadTest, OpenAiRequestAsBeastWroteIt) {
  provider_.api_key = "sk-abc";
  provider_.headers = {{"OpenAI-Organization", "org-1"}};
  auto request = chat(openai_);
  request.headers.emplace_back("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_EQ(text_head(request), beast_head(request));
  EXPECT_TRUE(text_head(request).starts_with("POST /v1/chat/completions HTTP/1.1\r\nUser-Agent: turnout\r\n"));
  EXPECT_TRUE(text_head(request).ends_with("Host: api.openai.com\r\nContent-Length: 13\r\n\r\n"));
}

TEST_F(RequestHeadTest, AzureRequestOnAnotherPortAsBeastWroteIt) {
  provider_.type = turnout::config::ProviderType::azure;
  provider_.api_key = "azure-key";
  provider_.api_version = "2024-06-01";
  const upstream::Endpoint azure{true, "example.openai.azure.com", "8443", ""};
  const auto request = chat(azure);
  EXPECT_EQ(text_head(request), beast_head(request));
}

TEST_F(RequestHeadTest, ProviderHeadersReplaceOursAsBeastDid) {
  provider_.api_key = "sk-abc";
  provider_.headers = {{"authorization", "Bearer other"}, {"User-Agent", "custom/1"},
                       {"X-Twice", "a"},                  {"content-type", "application/json; charset=utf-8"},
                       {"x-twice", "b"}};
  const auto request = chat(openai_);
  EXPECT_EQ(text_head(request), beast_head(request));
  EXPECT_EQ(text_head(request).find("turnout"), std::string::npos);
  EXPECT_EQ(text_head(request).find("Bearer sk-abc"), std::string::npos);
}

TEST_F(RequestHeadTest, Ipv6HostAndPlainHttpAsBeastWroteThem) {
  const upstream::Endpoint local{false, "::1", "8000", ""};
  const upstream::Endpoint default_port{false, "localhost", "80", ""};
  EXPECT_EQ(text_head(chat(local)), beast_head(chat(local)));
  EXPECT_EQ(text_head(chat(default_port)), beast_head(chat(default_port)));
}

TEST_F(RequestHeadTest, EmptyBodiesAsBeastWroteThem) {
  auto post = chat(openai_, "");
  EXPECT_EQ(text_head(post), beast_head(post));  // POST: Content-Length: 0
  auto get = chat(openai_, "");
  get.method = http::verb::get;
  EXPECT_EQ(text_head(get), beast_head(get));  // GET: no Content-Length
  EXPECT_EQ(text_head(get).find("Content-Length"), std::string::npos);
}

// Framing is the gateway's: a provider header cannot add a second length, a transfer
// coding, another Host or a Connection field that would change how the body is read.
TEST_F(RequestHeadTest, FramingHeadersAreTheGatewaysOwn) {
  provider_.headers = {{"Host", "evil.example"},
                       {"Content-Length", "1"},
                       {"Transfer-Encoding", "chunked"},
                       {"connection", "close"}};
  const std::string head = text_head(chat(openai_));
  EXPECT_EQ(head,
            "POST /v1/chat/completions HTTP/1.1\r\nUser-Agent: turnout\r\nContent-Type: application/json\r\n"
            "x-request-id: req-123\r\nHost: api.openai.com\r\nContent-Length: 13\r\n\r\n");
}

// The head's lines in order of their text: the fixed fields move the call's own
// (x-request-id, trace context) after the provider's, which changes nothing a server reads.
std::vector<std::string> sorted_lines(const std::string& head) {
  std::vector<std::string> lines;
  for (std::size_t start = 0; start < head.size();) {
    const std::size_t end = head.find("\r\n", start);
    lines.push_back(head.substr(start, end - start));
    start = end + 2;
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

// Endpoint::fixed_fields, written once per provider, send what the per-call list sent.
TEST_F(RequestHeadTest, FixedFieldsSendWhatThePerCallListSent) {
  const upstream::Endpoint azure{true, "example.openai.azure.com", "8443", ""};
  struct Case {
    turnout::config::ProviderConfig provider;
    const upstream::Endpoint* endpoint;
  };
  std::vector<Case> cases(5);
  cases[0].provider.api_key = "sk-abc";
  cases[0].provider.headers = {{"OpenAI-Organization", "org-1"}};
  cases[0].endpoint = &openai_;
  cases[1].provider.type = turnout::config::ProviderType::azure;
  cases[1].provider.api_key = "azure-key";
  cases[1].provider.api_version = "2024-06-01";
  cases[1].endpoint = &azure;
  cases[2].provider.api_key = "sk-abc";
  cases[2].provider.headers = {{"authorization", "Bearer other"}, {"User-Agent", "custom/1"}, {"X-Twice", "a"},
                               {"content-type", "application/json; charset=utf-8"}, {"x-twice", "b"}};
  cases[2].endpoint = &openai_;
  cases[3].provider.headers = {{"Host", "evil.example"}, {"Content-Length", "1"}, {"connection", "close"}};
  cases[3].endpoint = &openai_;
  cases[4].endpoint = &openai_;  // no key, no headers
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    upstream::Endpoint fixed = *cases[i].endpoint;
    upstream::add_fixed_fields(fixed, cases[i].provider);
    ASSERT_TRUE(fixed.fixed_fields.has_value());
    auto per_call = upstream::make_chat_request(cases[i].provider, *cases[i].endpoint, "gpt-4o", "{}", "req-123");
    auto once = upstream::make_chat_request(cases[i].provider, fixed, "gpt-4o", "{}", "req-123");
    for (auto* request : {&per_call, &once})
      request->headers.emplace_back("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    EXPECT_EQ(once.headers.size(), 2u);  // only the call's own
    EXPECT_EQ(sorted_lines(text_head(once)), sorted_lines(text_head(per_call)));
    EXPECT_TRUE(text_head(once).starts_with("POST "));
    EXPECT_TRUE(text_head(once).ends_with("Content-Length: 2\r\n\r\n"));
  }
}

// A provider header named like a field the call adds itself is settled per call, as before:
// the provider's x-request-id replaces the call's; the call's trace context replaces the
// provider's.
TEST_F(RequestHeadTest, AProviderHeaderNamedLikeAPerCallFieldKeepsThePerCallList) {
  provider_.api_key = "sk-abc";
  provider_.headers = {{"X-Request-Id", "fixed-id"}, {"traceparent", "provider's"}};
  upstream::Endpoint endpoint = openai_;
  upstream::add_fixed_fields(endpoint, provider_);
  EXPECT_FALSE(endpoint.fixed_fields.has_value());
  auto request = chat(endpoint);
  request.headers.emplace_back("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  const std::string head = text_head(request);
  EXPECT_NE(head.find("X-Request-Id: fixed-id\r\n"), std::string::npos);
  EXPECT_EQ(head.find("req-123"), std::string::npos);
  EXPECT_EQ(head.find("provider's"), std::string::npos);
  EXPECT_NE(head.find("traceparent: 00-0af7"), std::string::npos);
}

}  // namespace
