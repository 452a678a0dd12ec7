#pragma once
// Server-sent events framing (the subset chat streams use): events end with a blank line,
// payloads are in `data:` lines.
#include <cstddef>
#include <string>
#include <string_view>

namespace turnout::server {

// Index just past the blank line that ends the first complete event in `buffer`, or npos.
std::size_t sse_event_end(std::string_view buffer);

// The event's data payload: its `data:` lines (one optional space after the colon
// removed) joined by '\n' into `scratch` when there are several. Returns false when the
// event has no data line (comments, keep-alives).
bool sse_event_data(std::string_view event, std::string& scratch, std::string_view& data);

}  // namespace turnout::server
