// Fuzz target for what the gateway reads from an upstream: an HTTP response parsed with
// the client's limits (64 KiB of headers, max_response_bytes), its body metered as a chat
// completion and, as an error body, scrubbed of credentials. No crash, no sanitizer
// report; the body never passes the limit; scrubbing never leaves the provider key.
#include "metering/usage.hpp"
#include "server/upstream_errors.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::uint64_t kMaxResponseBytes = 8192;
  constexpr std::string_view kKey = "sk-provider-key-0123456789";
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  http::response_parser<http::string_body> parser;
  parser.header_limit(64 * 1024);
  parser.body_limit(kMaxResponseBytes);
  boost::system::error_code ec;
  std::string buffered(input);
  while (!buffered.empty() && !parser.is_done()) {
    const std::size_t used = parser.put(boost::asio::buffer(buffered), ec);
    buffered.erase(0, used);
    if (ec || used == 0) break;
  }
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  if (ec || !parser.is_done()) return 0;
  const std::string& body = parser.get().body();
  if (body.size() > kMaxResponseBytes) std::abort();

  static simdjson::dom::parser json;
  if (auto doc = json.parse(body); !doc.error()) {
    (void)turnout::metering::meter_completion(doc.value_unsafe(), turnout::tokenizer::EncodingId::cl100k_base,
                                                 [] { return std::uint64_t{7}; });
    turnout::metering::StreamUsage stream(turnout::tokenizer::EncodingId::o200k_base);
    stream.observe(doc.value_unsafe());
    (void)stream.finish([] { return std::uint64_t{7}; });
  }
  const std::string scrubbed = turnout::server::scrub_credentials(body + std::string(kKey), kKey);
  if (scrubbed.find(kKey) != std::string::npos) std::abort();
  return 0;
}
