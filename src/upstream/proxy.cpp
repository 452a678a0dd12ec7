#include "upstream/proxy.hpp"

#include "common/base64.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>

namespace turnout::upstream {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::optional<std::string> first_set(const config::EnvLookup& env, std::initializer_list<std::string_view> names) {
  for (auto name : names) {
    if (auto value = env(name); value && !value->empty()) return value;
  }
  return std::nullopt;
}

// "a.example, .b.example:8443 ,*" -> {"a.example", "b.example", "*"}
std::vector<std::string> parse_no_proxy(std::string_view list) {
  std::vector<std::string> entries;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    std::string_view entry = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    while (!entry.empty() && std::isspace(static_cast<unsigned char>(entry.front()))) entry.remove_prefix(1);
    while (!entry.empty() && std::isspace(static_cast<unsigned char>(entry.back()))) entry.remove_suffix(1);
    if (entry.starts_with('[')) {  // [::1]:port
      entry = entry.substr(1, entry.find(']') == std::string_view::npos ? entry.size() : entry.find(']') - 1);
    } else if (std::count(entry.begin(), entry.end(), ':') == 1) {  // host:port (an IPv6 address has more)
      entry = entry.substr(0, entry.find(':'));
    }
    while (entry.starts_with('.')) entry.remove_prefix(1);
    if (!entry.empty()) entries.push_back(lower(entry));
  }
  return entries;
}

}  // namespace

bool no_proxy_matches(const std::vector<std::string>& no_proxy, std::string_view host) {
  const std::string name = lower(host);
  return std::any_of(no_proxy.begin(), no_proxy.end(), [&](const std::string& entry) {
    if (entry == "*" || entry == name) return true;
    return name.size() > entry.size() && name.ends_with(entry) && name[name.size() - entry.size() - 1] == '.';
  });
}

bool ProxyConfig::applies_to(const Endpoint& target) const {
  return target.tls && !no_proxy_matches(no_proxy, target.host);
}

Result<std::optional<ProxyConfig>> proxy_from_environment(const config::EnvLookup& env) {
  auto url_text = first_set(env, {"HTTPS_PROXY", "https_proxy"});
  if (!url_text) return std::optional<ProxyConfig>{};
  // curl accepts a bare host:port; so do we.
  if (url_text->find("://") == std::string::npos) url_text = "http://" + *url_text;
  auto url = boost::urls::parse_absolute_uri(*url_text);
  if (!url) return make_error("HTTPS_PROXY is not a valid proxy URL");
  if (url->scheme_id() != boost::urls::scheme::http)
    return make_error("HTTPS_PROXY must be an http:// proxy (TLS to the proxy itself is not supported)");

  ProxyConfig config;
  config.proxy.tls = false;
  config.proxy.host = url->host_address();
  if (config.proxy.host.empty()) return make_error("HTTPS_PROXY has no host");
  config.proxy.port = url->has_port() ? std::string(url->port()) : "1080";  // curl's default proxy port
  if (url->has_userinfo()) config.authorization = "Basic " + base64_encode(url->userinfo());
  if (auto list = first_set(env, {"NO_PROXY", "no_proxy"})) config.no_proxy = parse_no_proxy(*list);
  return std::optional<ProxyConfig>(std::move(config));
}

}  // namespace turnout::upstream
