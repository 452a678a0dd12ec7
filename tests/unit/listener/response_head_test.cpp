// The hand-written response head must be what Beast's serializer would have sent.
#include "listener/response_head.hpp"

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

}  // namespace
