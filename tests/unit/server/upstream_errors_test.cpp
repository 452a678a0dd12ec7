// Upstream failures as the client sees them: credentials never echoed back, the provider
// refusing the gateway's key never passed off as the client's key being wrong, and each
// kind of failure with its own code.
#include "server/upstream_errors.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

namespace ts = turnout::server;
namespace up = turnout::upstream;

namespace {

constexpr std::string_view kKey = "prov-secret-0123456789abcdef";

std::string relayed(unsigned status, std::string body) {
  simdjson::dom::parser parser;
  up::Response response{status, "application/json", std::nullopt, std::move(body)};
  return ts::upstream_error_response(parser, response, 11, "openai", kKey).body();
}

}  // namespace

TEST(UpstreamErrors, CredentialsAreScrubbedFromRelayedBodies) {
  const std::string body = relayed(
      400, R"({"error":{"message":"bad request with key prov-secret-0123456789abcdef; sent Authorization: Bearer sk-proj-AbCdEf0123456789xyz","headers":{"authorization":"Bearer abcdefgh12345678","api-key":"azurekey123"},"note":"sk-live_ZZZZZZZZZZZZ"}})");
  EXPECT_EQ(body.find("prov-secret"), std::string::npos) << body;
  EXPECT_EQ(body.find("AbCdEf0123456789"), std::string::npos) << body;
  EXPECT_EQ(body.find("abcdefgh12345678"), std::string::npos) << body;
  EXPECT_EQ(body.find("azurekey123"), std::string::npos) << body;
  EXPECT_EQ(body.find("ZZZZZZZZ"), std::string::npos) << body;
  EXPECT_NE(body.find("bad request with key [redacted]"), std::string::npos) << body;
  simdjson::dom::parser parser;
  EXPECT_FALSE(parser.parse(body).error()) << body;  // still the JSON it was
}

TEST(UpstreamErrors, OrdinaryWordsAreLeftAlone) {
  const std::string text = R"({"error":{"message":"Missing authorization header. Use a bearer token; task-1 ok","code":"x"}})";
  EXPECT_EQ(ts::scrub_credentials(text, kKey), text);
}

TEST(UpstreamErrors, ProviderAuthFailureIsTheGatewaysNotTheClients) {
  for (unsigned status : {401u, 403u}) {
    simdjson::dom::parser parser;
    up::Response response{status, "application/json", std::nullopt,
                          R"({"error":{"message":"Incorrect API key provided: prov-secret-0123456789abcdef","code":"invalid_api_key"}})"};
    const auto res = ts::upstream_error_response(parser, response, 11, "openai", kKey);
    EXPECT_EQ(res.result_int(), 502u);
    EXPECT_NE(res.body().find(R"("code":"upstream_auth_failed")"), std::string::npos) << res.body();
    EXPECT_EQ(res.body().find("invalid_api_key"), std::string::npos) << res.body();
    EXPECT_EQ(res.body().find("prov-secret"), std::string::npos) << res.body();
    EXPECT_EQ(ts::upstream_error_type(status), "upstream_auth_failed");
  }
}

TEST(UpstreamErrors, EachFailureKindHasItsCode) {
  EXPECT_EQ(ts::failure_error(up::Failure{up::FailureKind::too_large, "x"}).code, "upstream_response_too_large");
  EXPECT_EQ(ts::failure_error(up::Failure{up::FailureKind::too_large, "x"}).status, 502u);
  EXPECT_EQ(ts::failure_error(up::Failure{up::FailureKind::timeout, "x"}).code, "upstream_timeout");
  EXPECT_EQ(ts::failure_error(up::Failure{up::FailureKind::malformed, "x"}).code, "upstream_malformed");
  EXPECT_EQ(ts::failure_error(up::Failure{up::FailureKind::connect, "x"}).code, "upstream_unreachable");
  EXPECT_EQ(ts::failure_error(up::Failure{up::FailureKind::too_large, "x"}).message.find("could not be reached"),
            std::string::npos);
}
