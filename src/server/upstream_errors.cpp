#include "server/upstream_errors.hpp"

#include <fmt/format.h>

namespace turnout::server {

HttpResponse upstream_error_response(simdjson::dom::parser& parser, upstream::Response& response, unsigned version) {
  auto parsed = parser.parse(response.body);
  if (!parsed.error() && parsed.value_unsafe().is_object()) {
    HttpResponse res{static_cast<http::status>(response.status), version};
    res.set(http::field::content_type, "application/json");
    res.body() = std::move(response.body);
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
  return status == 429 ? "upstream_rate_limited" : status >= 500 ? "upstream_server_error" : "upstream_client_error";
}

ApiError failure_error(const std::optional<upstream::Failure>& failure) {
  const bool timeout = failure && failure->kind == upstream::FailureKind::timeout;
  const std::string detail = failure ? failure->message : "no provider could be reached";
  return ApiError{timeout ? 504u : 502u,
                  timeout ? "The upstream did not answer in time: " + detail
                          : "The upstream could not be reached: " + detail,
                  timeout ? "timeout_error" : "upstream_error", "",
                  timeout ? "upstream_timeout" : "upstream_unreachable"};
}

}  // namespace turnout::server
