// Fuzz target for the HTTP request head and body framing, configured as the listener
// configures it (64 KiB of headers, a body limit), the input arriving in two reads split
// where its first byte says: no crash, no sanitizer report; a body never passes the
// limit; every parsed head goes through the transfer-coding check.
#include "listener/request_framing.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  constexpr std::uint64_t kBodyLimit = 4096;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::size_t split = data[0] % (input.size() + 1);

  http::request_parser<http::string_body> parser;
  parser.body_limit(kBodyLimit);
  parser.header_limit(64 * 1024);
  boost::system::error_code ec;
  std::string buffered;  // what a reader keeps between reads: bytes the parser has not used
  for (std::string_view read : {input.substr(0, split), input.substr(split)}) {
    buffered.append(read);
    while (!buffered.empty() && !parser.is_done()) {
      const std::size_t used = parser.put(boost::asio::buffer(buffered), ec);
      buffered.erase(0, used);
      if (ec == http::error::need_more) {
        ec = {};
        break;
      }
      if (ec) break;
      if (parser.is_header_done()) (void)turnout::listener::unsupported_transfer_coding(parser.get().base());
      if (used == 0) break;
    }
    if (ec || parser.is_done()) break;
  }
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  if (parser.is_done() && parser.get().body().size() > kBodyLimit) std::abort();
  return 0;
}
