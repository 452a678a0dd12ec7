#pragma once
// What the client sees when the upstream failed: an upstream error answer passed through
// (or a 502 when it is not JSON), or the gateway's own error for a failure to get one.
#include "server/openai_error.hpp"
#include "upstream/client.hpp"

#include <simdjson.h>

#include <optional>
#include <string>

namespace turnout::server {

// An upstream 4xx, or a 429/5xx left after retries and fallbacks: passed through when its
// body is a JSON object, else a 502 that says what came back.
HttpResponse upstream_error_response(simdjson::dom::parser& parser, upstream::Response& response, unsigned version);

// The ledger's error_type for an upstream error status.
std::string upstream_error_type(unsigned status);

// 504 upstream_timeout or 502 upstream_unreachable, with the failure's detail.
ApiError failure_error(const std::optional<upstream::Failure>& failure);

}  // namespace turnout::server
