#pragma once
// Internal to the upstream client: the request head as text, so that the head and the body
// go out in one gather write without Beast's serializer (its buffer walk and a heap node
// per header field, issue 16). The bytes are what Beast wrote for the same request; the
// unit test holds the two side by side.
#include "upstream/client.hpp"

#include <string>

namespace turnout::upstream::detail {

// Appends the request line, the fields and the blank line to `out`: User-Agent, the
// request's headers in order (a later header replaces an earlier one of the same name,
// case-insensitively, as provider headers replace ours), Host, and Content-Length when
// there is a body (or the method is POST, PUT or OPTIONS). Host, Content-Length,
// Transfer-Encoding and Connection are the gateway's own: headers of those names in the
// request are not sent (HTTP/1.1 keeps the connection alive without a Connection field).
void append_request_head(std::string& out, const Request& request);

}  // namespace turnout::upstream::detail
