#include "common/header_text.hpp"

namespace turnout {

void append_header_line(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  for (;;) {  // copies runs between forbidden bytes; almost always one run
    const std::size_t stop = value.find_first_of(std::string_view("\r\n\0", 3));
    out += value.substr(0, stop);
    if (stop == std::string_view::npos) break;
    value.remove_prefix(stop + 1);
  }
  out += "\r\n";
}

}  // namespace turnout
