#pragma once
// Internal to the upstream client: the request head as text, so that the head and the body
// go out in one gather write without Beast's serializer (its buffer walk and a heap node
// per header field, issue 16). The bytes are what Beast wrote for the same request; the
// unit test holds the two side by side.
#include "upstream/client.hpp"

#include <string>
#include <utility>
#include <vector>

namespace turnout::upstream::detail {

// Appends the request line, the fields and the blank line to `out`: User-Agent, the
// request's headers in order (a later header replaces an earlier one of the same name,
// case-insensitively, as provider headers replace ours), Host, and Content-Length when
// there is a body (or the method is POST, PUT or OPTIONS). Host, Content-Length,
// Transfer-Encoding and Connection are the gateway's own: headers of those names in the
// request are not sent (HTTP/1.1 keeps the connection alive without a Connection field).
// With endpoint->fixed_fields set, those are written as they are in place of the User-Agent
// and the fields before the request's own `headers`.
void append_request_head(std::string& out, const Request& request);

// Appends `headers` as fields, skipping framing fields and any that a later header of the
// same name replaces; first User-Agent when `user_agent` and no header replaces it. (The
// field part of append_request_head, also used to write Endpoint::fixed_fields once.)
void append_fields(std::string& out, const std::vector<std::pair<std::string, std::string>>& headers,
                   bool user_agent);

}  // namespace turnout::upstream::detail
