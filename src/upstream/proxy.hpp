#pragma once
// Outbound proxy for HTTPS upstreams, configured the way curl and most HTTP clients read
// the environment: HTTPS_PROXY (or https_proxy) names an http:// proxy that is asked to
// open a tunnel (HTTP CONNECT) to the upstream, inside which TLS runs end to end, so the
// proxy sees neither the request nor the API key; NO_PROXY (or no_proxy) lists hosts
// reached directly. Plain-http upstreams (local servers, the mock) never use the proxy.
#include "common/result.hpp"
#include "config/config.hpp"
#include "upstream/client.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::upstream {

struct ProxyConfig {
  Endpoint proxy;             // the proxy itself (plain TCP)
  std::string authorization;  // Proxy-Authorization value ("Basic ...") or empty; a secret
  // NO_PROXY entries, lower case, without a leading dot or a port; "*" means every host.
  std::vector<std::string> no_proxy;

  // Whether a connection to `target` goes through the proxy.
  bool applies_to(const Endpoint& target) const;
};

// nullopt when no HTTPS proxy is set; an error (that never quotes the URL, which may hold
// a password) when the variable is set but unusable.
Result<std::optional<ProxyConfig>> proxy_from_environment(const config::EnvLookup& env);

// NO_PROXY matching: `host` equals an entry or is a subdomain of it (case-insensitive).
bool no_proxy_matches(const std::vector<std::string>& no_proxy, std::string_view host);

}  // namespace turnout::upstream
