#include "server/sse.hpp"

namespace turnout::server {

std::size_t sse_event_end(std::string_view buffer) {
  // A line ends with \n, \r\n or \r; an event ends at an empty line.
  for (std::size_t i = 0; i < buffer.size(); ++i) {
    const char c = buffer[i];
    if (c != '\n' && c != '\r') continue;
    std::size_t next = i + 1;
    if (c == '\r' && next < buffer.size() && buffer[next] == '\n') ++next;
    if (next >= buffer.size()) return std::string_view::npos;
    if (buffer[next] == '\n') return next + 1;
    if (buffer[next] == '\r') {
      if (next + 1 < buffer.size() && buffer[next + 1] == '\n') return next + 2;
      if (next + 1 >= buffer.size()) return std::string_view::npos;  // could still become \r\n
      return next + 1;
    }
    i = next - 1;
  }
  return std::string_view::npos;
}

bool sse_event_data(std::string_view event, std::string& scratch, std::string_view& data) {
  bool found = false;
  bool joined = false;
  std::size_t pos = 0;
  while (pos < event.size()) {
    std::size_t eol = event.find_first_of("\r\n", pos);
    if (eol == std::string_view::npos) eol = event.size();
    std::string_view line = event.substr(pos, eol - pos);
    pos = eol + 1;
    if (eol < event.size() && event[eol] == '\r' && pos < event.size() && event[pos] == '\n') ++pos;
    if (line.substr(0, 5) != "data:") continue;
    line.remove_prefix(5);
    if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (!found) {
      data = line;
      found = true;
    } else {
      if (!joined) {
        scratch.assign(data);
        joined = true;
      }
      scratch.push_back('\n');
      scratch.append(line);
      data = scratch;
    }
  }
  return found;
}

}  // namespace turnout::server
