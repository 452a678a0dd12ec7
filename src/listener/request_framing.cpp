#include "listener/request_framing.hpp"

#include <boost/beast/core/string.hpp>

namespace turnout::listener {

std::optional<std::string> unsupported_transfer_coding(const boost::beast::http::request_header<>& head) {
  for (const auto& field : head) {
    if (field.name() != boost::beast::http::field::transfer_encoding) continue;
    std::string_view value = field.value();
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (!boost::beast::iequals(value, "chunked")) return std::string(value);
  }
  return std::nullopt;
}

}  // namespace turnout::listener
