#include "listener/response_head.hpp"

#include <charconv>

namespace turnout::listener {

void append_response_head(std::string& out, const boost::beast::http::response_header<>& head,
                          std::string_view raw_fields) {
  const unsigned version = head.version();
  out += "HTTP/";
  out += static_cast<char>('0' + version / 10 % 10);
  out += '.';
  out += static_cast<char>('0' + version % 10);
  out += ' ';
  char status[8];
  out.append(status, std::to_chars(status, status + sizeof status, head.result_int()).ptr);
  out += ' ';
  out += head.reason();
  out += "\r\n";
  for (const auto& field : head) {
    out += field.name_string();
    out += ": ";
    out += field.value();
    out += "\r\n";
  }
  out += raw_fields;
  out += "\r\n";
}

}  // namespace turnout::listener
