// The hand-written response head must be what Beast's serializer would have sent.
#include "listener/response_head.hpp"

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <gtest/gtest.h>

#include <sstream>

namespace {

namespace http = boost::beast::http;

std::string beast_head(const http::response<http::string_body>& res) {
  std::ostringstream out;
  out << res.base();
  return out.str();
}

std::string our_head(const http::response<http::string_body>& res) {
  std::string out = "kept ";
  turnout::listener::append_response_head(out, res.base());
  return out.substr(5);
}

TEST(ResponseHead, MatchesBeastsSerializer) {
  http::response<http::string_body> ok{http::status::ok, 11};
  ok.set(http::field::content_type, "application/json");
  ok.set("x-request-id", "req-1");
  ok.set("x-turnout-cost-usd", "0.000123");
  ok.body() = R"({"a":1})";
  ok.keep_alive(true);
  ok.prepare_payload();
  EXPECT_EQ(our_head(ok), beast_head(ok));
  EXPECT_EQ(our_head(ok).substr(0, 17), "HTTP/1.1 200 OK\r\n");

  http::response<http::string_body> refused{http::status::too_many_requests, 10};
  refused.set(http::field::retry_after, "3");
  refused.keep_alive(false);
  refused.prepare_payload();
  EXPECT_EQ(our_head(refused), beast_head(refused));
  EXPECT_EQ(our_head(refused).substr(0, 26), "HTTP/1.0 429 Too Many Requ");

  http::response<http::string_body> custom{http::status::bad_gateway, 11};
  custom.reason("Upstream Trouble");
  EXPECT_EQ(our_head(custom), beast_head(custom));
}

// The gateway's per-call headers, written as text, go out after Beast's fields, before
// the blank line.
TEST(ResponseHead, RawFieldsFollowTheFields) {
  http::response<http::string_body> ok{http::status::ok, 11};
  ok.set(http::field::content_type, "application/json");
  ok.body() = "{}";
  ok.prepare_payload();
  std::string head;
  turnout::listener::append_response_head(head, ok.base(), "x-request-id: req-1\r\nx-turnout-attempts: 1\r\n");
  EXPECT_EQ(head,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            "x-request-id: req-1\r\nx-turnout-attempts: 1\r\n\r\n");
}

// A streamed head (chunked, no body) is what Beast's serializer writes for it.
TEST(ResponseHead, ChunkedHeadMatchesBeastsSerializer) {
  http::response<http::empty_body> head{http::status::ok, 11};
  head.set(http::field::content_type, "text/event-stream");
  head.set(http::field::cache_control, "no-cache");
  head.keep_alive(true);
  head.chunked(true);
  std::ostringstream beast;
  beast << head.base();
  std::string ours;
  turnout::listener::append_response_head(ours, head.base());
  EXPECT_EQ(ours, beast.str());
}

}  // namespace
