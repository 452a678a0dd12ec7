#pragma once
// HTTP header lines written as text, for heads the gateway writes itself rather than
// through Beast's field nodes (one heap node per field; issue 16).
#include <string>
#include <string_view>

namespace turnout {

// Appends "name: value\r\n". CR, LF and NUL in the value are dropped: a value (a model
// name, a client's request id) can never end the line and start a header of its own.
// `name` is the caller's literal token.
void append_header_line(std::string& out, std::string_view name, std::string_view value);

}  // namespace turnout
