#pragma once
// A buffered response's head as text, byte for byte what Beast's serializer writes, so the
// head and the body go out in one gather write without the serializer's buffer walk
// (~4% of the event loop's CPU at the 300-token load, issue 16).
#include <boost/beast/http/message.hpp>

#include <string>
#include <string_view>

namespace turnout::listener {

// Appends the status line, the fields of `head`, then `raw_fields` (header lines already
// written as text) and the blank line to `out`.
void append_response_head(std::string& out, const boost::beast::http::response_header<>& head,
                          std::string_view raw_fields = {});

}  // namespace turnout::listener
