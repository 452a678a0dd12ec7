// Fuzz target for SSE framing: the same bytes framed whole and in reads split where the
// input says must give the same events, each ending with a blank line; data extraction
// never crashes.
#include "server/sse.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "sse_fuzz: %s\n", what);
    std::abort();
  }
}

std::vector<std::string> frame(std::string_view stream, std::size_t read_size) {
  turnout::server::SseFramer framer(1u << 20);
  std::vector<std::string> events;
  std::string scratch;
  for (std::size_t i = 0; i < stream.size(); i += read_size) {
    framer.append(stream.substr(i, read_size));
    while (auto event = framer.next_event()) {
      std::string_view data;
      (void)turnout::server::sse_event_data(*event, scratch, data);
      events.emplace_back(*event);
    }
  }
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::size_t read_size = 1 + data[0] % 16;
  const auto whole = frame(stream, stream.size() + 1);
  check(frame(stream, read_size) == whole, "split reads framed differently");
  std::string joined;
  for (const auto& event : whole) {
    check(event.back() == '\n' || event.back() == '\r', "an event does not end with a line break");
    joined += event;
  }
  check(stream.substr(0, joined.size()) == joined, "the events are not the start of the stream");
  return 0;
}
