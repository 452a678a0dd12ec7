#pragma once
// What the client sees when the upstream failed: an upstream error answer passed through
// (scrubbed of credentials, or a 502 when it is not JSON or says the provider refused the
// gateway's own key), or the gateway's own error for a failure to get one.
#include "server/openai_error.hpp"
#include "upstream/client.hpp"

#include <simdjson.h>

#include <optional>
#include <string>
#include <string_view>

namespace turnout::server {

// An upstream 4xx, or a 429/5xx left after retries and fallbacks: passed through when its
// body is a JSON object (with credentials scrubbed, see scrub_credentials), else a 502
// that says what came back. A 401 or 403 is the provider refusing the gateway's key
// (`provider_key` of provider `provider`): 502 upstream_auth_failed, since passing it
// through would read as the client's own key being wrong.
HttpResponse upstream_error_response(simdjson::dom::parser& parser, upstream::Response& response, unsigned version,
                                     std::string_view provider, std::string_view provider_key);

// The ledger's error_type for an upstream error status.
std::string upstream_error_type(unsigned status);

// `text` with everything that looks like a credential replaced by "[redacted]": the
// provider's key itself, `Bearer <token>`, `sk-...` keys, and the values of echoed
// Authorization / api-key headers. Upstreams echo request headers in error bodies.
std::string scrub_credentials(std::string_view text, std::string_view provider_key);

// 504 upstream_timeout, 502 upstream_response_too_large, 502 upstream_malformed (an
// invalid HTTP response) or 502 upstream_unreachable, with the failure's detail.
ApiError failure_error(const std::optional<upstream::Failure>& failure);

}  // namespace turnout::server
