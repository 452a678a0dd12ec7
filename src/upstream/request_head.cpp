#include "upstream/request_head.hpp"

#include <boost/beast/core/string.hpp>

#include <charconv>

namespace turnout::upstream::detail {
namespace {

using boost::beast::iequals;

bool is_framing_field(std::string_view name) {
  return iequals(name, "host") || iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
         iequals(name, "connection");
}

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Whether a header of the same name comes later in the list (and so replaces this one).
bool replaced_later(const HeaderList& headers, std::size_t index) {
  const std::string_view name = headers[index].first;
  for (std::size_t later = index + 1; later < headers.size(); ++later) {
    if (iequals(headers[later].first, name)) return true;
  }
  return false;
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

void append_host(std::string& out, const Endpoint& endpoint) {
  out += "Host: ";
  const bool ipv6 = endpoint.host.find(':') != std::string::npos;
  if (ipv6) out += '[';
  out += endpoint.host;
  if (ipv6) out += ']';
  if (endpoint.port != (endpoint.tls ? "443" : "80")) {
    out += ':';
    out += endpoint.port;
  }
  out += "\r\n";
}

}  // namespace

void append_request_head(std::string& out, const Request& request) {
  out += boost::beast::http::to_string(request.method);
  out += ' ';
  out += request.target;
  out += " HTTP/1.1\r\n";
  const std::optional<std::string>& fixed = request.endpoint->fixed_fields;
  if (fixed) out += *fixed;
  append_fields(out, request.headers, !fixed);
  append_host(out, *request.endpoint);
  using boost::beast::http::verb;
  if (!request.body.empty() || request.method == verb::post || request.method == verb::put ||
      request.method == verb::options) {
    char digits[24];
    out += "Content-Length: ";
    out.append(digits, std::to_chars(digits, digits + sizeof digits, request.body.size()).ptr);
    out += "\r\n";
  }
  out += "\r\n";
}

void append_fields(std::string& out, const HeaderList& headers, bool user_agent) {
  if (user_agent) {
    bool replaced = false;
    for (const auto& [name, value] : headers) replaced = replaced || iequals(name, "user-agent");
    if (!replaced) append_field(out, "User-Agent", "turnout");
  }
  for (std::size_t i = 0; i < headers.size(); ++i) {
    const auto& [name, value] = headers[i];
    if (is_framing_field(name) || replaced_later(headers, i)) continue;
    append_field(out, name, value);
  }
}

}  // namespace turnout::upstream::detail
