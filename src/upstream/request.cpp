// Provider URL parsing and request construction (no I/O).
#include "upstream/client.hpp"
#include "upstream/request_head.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <chrono>

namespace turnout::upstream {
namespace {

// Config durations are seconds as doubles; zero or less means "no limit".
std::chrono::steady_clock::duration seconds_to_duration(double seconds) {
  if (!(seconds > 0)) return {};
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(seconds));
}

std::string encode_component(std::string_view text) {
  return boost::urls::encode(text, boost::urls::unreserved_chars);
}

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// The provider's key, as its API wants it, and the body's type: the fields before a call's own.
void add_key_and_content_type(HeaderList& headers, const config::ProviderConfig& provider) {
  if (!provider.api_key.empty()) {
    if (provider.type == config::ProviderType::azure)
      headers.emplace_back("api-key", provider.api_key);
    else
      headers.emplace_back("Authorization", "Bearer " + provider.api_key);
  }
  headers.emplace_back("Content-Type", "application/json");
}

// Fields a call adds itself (here and the server's trace context). A provider header of one
// of these names replaces or is replaced by the call's, which only the call can settle.
bool is_per_call_field(std::string_view name) {
  return boost::beast::iequals(name, "x-request-id") || boost::beast::iequals(name, "traceparent") ||
         boost::beast::iequals(name, "tracestate");
}

}  // namespace

// Messages never echo the URL itself: it may carry credentials.
Result<Endpoint> parse_base_url(std::string_view base_url) {
  auto parsed = boost::urls::parse_absolute_uri(base_url);
  if (!parsed) return make_error("base_url is not an absolute URL");
  const auto& url = *parsed;

  Endpoint endpoint;
  const auto scheme = url.scheme_id();
  if (scheme == boost::urls::scheme::https) {
    endpoint.tls = true;
  } else if (scheme == boost::urls::scheme::http) {
    endpoint.tls = false;
  } else {
    return make_error("base_url scheme must be http or https");
  }
  if (url.has_userinfo()) return make_error("base_url must not contain user credentials");
  if (url.has_query() || url.has_fragment())
    return make_error("base_url must not contain a query or fragment");

  // host_address() drops the brackets of an IPv6 literal, which is what the resolver wants.
  endpoint.host = url.host_address();
  if (endpoint.host.empty()) return make_error("base_url has no host");
  if (url.has_port()) {
    if (url.port_number() == 0) return make_error("base_url has an invalid port");
    endpoint.port = url.port();
  } else {
    endpoint.port = endpoint.tls ? "443" : "80";
  }

  std::string_view path = url.encoded_path();
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  endpoint.base_path = path;
  return endpoint;
}

Request make_chat_request(const config::ProviderConfig& provider, const Endpoint& endpoint,
                          std::string_view upstream_model, std::string body,
                          std::string_view request_id) {
  return make_provider_request(provider, endpoint, "/chat/completions", upstream_model, std::move(body), request_id);
}

Request make_provider_request(const config::ProviderConfig& provider, const Endpoint& endpoint,
                              std::string_view operation, std::string_view upstream_model, std::string body,
                              std::string_view request_id) {
  Request request;
  request.provider = &provider;
  request.endpoint = &endpoint;
  request.body = std::move(body);
  request.timeout = seconds_to_duration(provider.timeout_s);
  request.connect_timeout = seconds_to_duration(provider.connect_timeout_s);
  request.first_byte_timeout = seconds_to_duration(provider.first_byte_timeout_s);
  request.max_response_bytes = provider.max_response_bytes;

  if (provider.type == config::ProviderType::azure) {
    request.target = endpoint.base_path + "/openai/deployments/" + encode_component(upstream_model);
    request.target += operation;
    if (!provider.api_version.empty())
      request.target += "?api-version=" + encode_component(provider.api_version);
  } else {
    request.target = endpoint.base_path;
    request.target += operation;
  }
  auto& headers = request.headers;
  if (endpoint.fixed_fields) {
    headers.reserve(3);  // x-request-id and the trace context
    if (!request_id.empty()) headers.emplace_back("x-request-id", std::string(request_id));
    return request;
  }
  headers.reserve(5 + provider.headers.size());
  add_key_and_content_type(headers, provider);
  if (!request_id.empty()) headers.emplace_back("x-request-id", std::string(request_id));
  // Provider headers come last so that they replace ours of the same name when sent.
  headers.insert(headers.end(), provider.headers.begin(), provider.headers.end());
  return request;
}

void add_fixed_fields(Endpoint& endpoint, const config::ProviderConfig& provider) {
  endpoint.fixed_fields.reset();
  for (const auto& [name, value] : provider.headers)
    if (is_per_call_field(name)) return;
  HeaderList fixed;
  add_key_and_content_type(fixed, provider);
  fixed.insert(fixed.end(), provider.headers.begin(), provider.headers.end());
  std::string text;
  detail::append_fields(text, fixed, true);
  endpoint.fixed_fields = std::move(text);
}

}  // namespace turnout::upstream
