#pragma once
// A buffered response's head as text, byte for byte what Beast's serializer writes, so the
// head and the body go out in one gather write without the serializer's buffer walk
// (~4% of the event loop's CPU at the 300-token load, issue 16).
#include <boost/beast/http/message.hpp>

#include <string>

namespace turnout::listener {

// Appends the status line, the fields and the blank line of `head` to `out`.
void append_response_head(std::string& out, const boost::beast::http::response_header<>& head);

}  // namespace turnout::listener
