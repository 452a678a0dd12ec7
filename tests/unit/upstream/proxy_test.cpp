// HTTPS_PROXY / NO_PROXY from the environment (src/upstream/proxy.hpp), curl's conventions.
#include "upstream/proxy.hpp"

#include <gtest/gtest.h>

#include <map>

namespace turnout::upstream {
namespace {

config::EnvLookup env_of(std::map<std::string, std::string, std::less<>> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

Endpoint https_endpoint(std::string host) { return Endpoint{true, std::move(host), "443", "/v1"}; }

TEST(Proxy, NoVariableNoProxy) {
  auto proxy = proxy_from_environment(env_of({}));
  ASSERT_TRUE(proxy);
  EXPECT_FALSE(*proxy);
  auto empty = proxy_from_environment(env_of({{"HTTPS_PROXY", ""}}));
  ASSERT_TRUE(empty);
  EXPECT_FALSE(*empty);
}

TEST(Proxy, UrlHostPortAndBasicCredentials) {
  auto proxy = proxy_from_environment(env_of({{"HTTPS_PROXY", "http://alice:s%40cret@proxy.corp:3128/"}}));
  ASSERT_TRUE(proxy) << proxy.error().message;
  ASSERT_TRUE(*proxy);
  EXPECT_EQ((*proxy)->proxy.host, "proxy.corp");
  EXPECT_EQ((*proxy)->proxy.port, "3128");
  EXPECT_FALSE((*proxy)->proxy.tls);
  EXPECT_EQ((*proxy)->authorization, "Basic YWxpY2U6c0BjcmV0");  // base64("alice:s@cret")
}

TEST(Proxy, LowerCaseVariablesAndBareHostPort) {
  auto proxy = proxy_from_environment(env_of({{"https_proxy", "10.0.0.5:8080"}}));
  ASSERT_TRUE(proxy) << proxy.error().message;
  ASSERT_TRUE(*proxy);
  EXPECT_EQ((*proxy)->proxy.host, "10.0.0.5");
  EXPECT_EQ((*proxy)->proxy.port, "8080");
  EXPECT_TRUE((*proxy)->authorization.empty());
}

TEST(Proxy, UnusableProxiesAreErrorsThatDoNotQuoteTheUrl) {
  auto https = proxy_from_environment(env_of({{"HTTPS_PROXY", "https://u:secret@proxy:443"}}));
  ASSERT_FALSE(https);
  EXPECT_NE(https.error().message.find("http://"), std::string::npos);
  EXPECT_EQ(https.error().message.find("secret"), std::string::npos);
  EXPECT_FALSE(proxy_from_environment(env_of({{"HTTPS_PROXY", "http://"}})));
}

TEST(Proxy, OnlyHttpsUpstreamsOutsideNoProxyUseIt) {
  auto proxy = proxy_from_environment(
      env_of({{"HTTPS_PROXY", "http://proxy:3128"}, {"NO_PROXY", "localhost, .internal.corp ,api.example.com:443"}}));
  ASSERT_TRUE(proxy && *proxy);
  const ProxyConfig& p = **proxy;
  EXPECT_TRUE(p.applies_to(https_endpoint("api.openai.com")));
  EXPECT_FALSE(p.applies_to(Endpoint{false, "api.openai.com", "80", "/v1"})) << "plain http is never proxied";
  EXPECT_FALSE(p.applies_to(https_endpoint("localhost")));
  EXPECT_FALSE(p.applies_to(https_endpoint("llm.internal.corp")));
  EXPECT_FALSE(p.applies_to(https_endpoint("internal.corp")));
  EXPECT_FALSE(p.applies_to(https_endpoint("API.Example.com")));
  EXPECT_TRUE(p.applies_to(https_endpoint("notinternal.corp"))) << "a suffix must end at a dot";
}

TEST(Proxy, NoProxyStarMatchesEverything) {
  EXPECT_TRUE(no_proxy_matches({"*"}, "anything.example"));
  EXPECT_FALSE(no_proxy_matches({}, "anything.example"));
}

}  // namespace
}  // namespace turnout::upstream
