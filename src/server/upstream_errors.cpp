#include "server/upstream_errors.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace turnout::server {
namespace {

constexpr std::string_view kRedacted = "[redacted]";

bool is_token_char(char c) {  // RFC 6750 b64token, plus '_' seen in provider keys
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' ||
         c == '/' || c == '=';
}

bool starts_with_nocase(std::string_view text, std::size_t at, std::string_view prefix) {
  if (text.size() - at < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(text[at + i])) != prefix[i]) return false;
  return true;
}

// The end of a header echo's value starting at `i`: `: value`, `": "value"`, `=value`.
// Stops at what ends a JSON string or a header line, so the JSON stays valid.
std::size_t header_value_end(std::string_view text, std::size_t i) {
  while (i < text.size() && (text[i] == '"' || text[i] == ' ' || text[i] == '\\')) ++i;
  if (i >= text.size() || (text[i] != ':' && text[i] != '=')) return std::string_view::npos;
  ++i;
  while (i < text.size() && (text[i] == ' ' || text[i] == '"' || (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == '"'))) {
    i += text[i] == '\\' ? 2 : 1;
  }
  return i;
}

// An echoed credential header at `i` ("Authorization": "...", api-key=...): appends the
// name with its value redacted to `out` and returns where the value ends, else npos.
std::size_t redact_header_echo(std::string_view text, std::size_t i, std::string& out) {
  static constexpr std::array<std::string_view, 4> kHeaderNames = {"authorization", "api-key", "api_key",
                                                                   "x-api-key"};
  for (std::string_view name : kHeaderNames) {
    if (!starts_with_nocase(text, i, name)) continue;
    const std::size_t value = header_value_end(text, i + name.size());
    if (value == std::string_view::npos) return value;
    out.append(text.substr(i, value - i));
    out += kRedacted;
    std::size_t end = value;
    while (end < text.size() && text[end] != '"' && text[end] != '\\' && text[end] != '\n' && text[end] != '\r' &&
           text[end] != ',' && text[end] != '}')
      ++end;
    return end;
  }
  return std::string_view::npos;
}

}  // namespace

std::string scrub_credentials(std::string_view text, std::string_view provider_key) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (!provider_key.empty() && text.compare(i, provider_key.size(), provider_key) == 0) {
      out += kRedacted;
      i += provider_key.size();
      continue;
    }
    const bool word_start = i == 0 || !std::isalnum(static_cast<unsigned char>(text[i - 1]));
    std::size_t secret_begin = std::string_view::npos;
    if (word_start && starts_with_nocase(text, i, "bearer ")) {
      secret_begin = i + 7;
      while (secret_begin < text.size() && text[secret_begin] == ' ') ++secret_begin;
    } else if (word_start && text.compare(i, 3, "sk-") == 0) {
      secret_begin = i;
    } else if (word_start) {
      if (const std::size_t next = redact_header_echo(text, i, out); next != std::string_view::npos) {
        i = next;
        continue;
      }
    }
    if (secret_begin != std::string_view::npos) {
      std::size_t end = secret_begin;
      while (end < text.size() && is_token_char(text[end])) ++end;
      if (end - secret_begin >= 8) {  // short words after "Bearer" or "sk-" are not secrets
        out.append(text.substr(i, secret_begin - i));
        out += kRedacted;
        i = end;
        continue;
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

HttpResponse upstream_error_response(simdjson::dom::parser& parser, upstream::Response& response, unsigned version,
                                     std::string_view provider, std::string_view provider_key) {
  if (response.status == 401 || response.status == 403) {
    return error_response(
        ApiError{502,
                 fmt::format("The provider '{}' rejected the gateway's credentials (HTTP {}): check "
                             "providers.{}.api_key in the gateway's configuration. Your own API key was accepted.",
                             provider, response.status, provider),
                 "upstream_error", "", "upstream_auth_failed"},
        version);
  }
  auto parsed = parser.parse(response.body);
  if (!parsed.error() && parsed.value_unsafe().is_object()) {
    HttpResponse res{static_cast<http::status>(response.status), version};
    res.set(http::field::content_type, "application/json");
    res.body() = scrub_credentials(response.body, provider_key);
    if (response.retry_after) res.set(http::field::retry_after, *response.retry_after);
    return res;
  }
  return error_response(
      ApiError{502,
               fmt::format("The upstream answered HTTP {} with a body that is not JSON ({}).", response.status,
                           response.content_type.empty() ? "no content type" : response.content_type),
               "upstream_error", "", "upstream_malformed"},
      version);
}

std::string upstream_error_type(unsigned status) {
  if (status == 401 || status == 403) return "upstream_auth_failed";
  return status == 429 ? "upstream_rate_limited" : status >= 500 ? "upstream_server_error" : "upstream_client_error";
}

ApiError failure_error(const std::optional<upstream::Failure>& failure) {
  const std::string detail = failure ? failure->message : "no provider could be reached";
  const upstream::FailureKind kind = failure ? failure->kind : upstream::FailureKind::connect;
  switch (kind) {
    case upstream::FailureKind::timeout:
      return ApiError{504, "The upstream did not answer in time: " + detail, "timeout_error", "", "upstream_timeout"};
    case upstream::FailureKind::too_large:
      return ApiError{502, "The upstream's response is larger than the provider's max_response_bytes: " + detail,
                      "upstream_error", "", "upstream_response_too_large"};
    case upstream::FailureKind::malformed:
      return ApiError{502, "The upstream sent an invalid HTTP response: " + detail, "upstream_error", "",
                      "upstream_malformed"};
    case upstream::FailureKind::connect:
    case upstream::FailureKind::reset:
      break;
  }
  return ApiError{502, "The upstream could not be reached: " + detail, "upstream_error", "", "upstream_unreachable"};
}

}  // namespace turnout::server
