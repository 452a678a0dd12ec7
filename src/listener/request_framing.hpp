#pragma once
// How a request's body is framed, checked once its head is read: the server decodes
// Content-Length and chunked bodies only.
#include <boost/beast/http/message.hpp>

#include <optional>
#include <string>

namespace turnout::listener {

// The Transfer-Encoding value when it is anything but exactly "chunked" (e.g. "gzip,
// chunked", which beast would read as a plain chunked body), else nullopt.
std::optional<std::string> unsupported_transfer_coding(const boost::beast::http::request_header<>& head);

}  // namespace turnout::listener
