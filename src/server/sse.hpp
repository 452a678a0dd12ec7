#pragma once
// Server-sent events framing (the subset chat streams use): events end with a blank line,
// payloads are in `data:` lines.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::server {

// The largest event the gateway relays (a chat chunk is a few hundred bytes; a large
// tool-call argument delta a few KiB): a larger one is an upstream_stream_error.
inline constexpr std::size_t kMaxSseEventBytes = 1u << 20;

// Index just past the blank line that ends the first complete event in `buffer`, or npos.
// `from` resumes an earlier scan that found nothing: the caller passes the size the buffer
// had then, and only the bytes from shortly before it (a line break may be split across
// the two) are looked at again, so framing a stream costs time linear in its size.
std::size_t sse_event_end(std::string_view buffer, std::size_t from = 0);

// Splits a byte stream into events. Each byte is scanned once, and an unfinished event may
// not grow past `max_event_bytes`: an upstream that never ends its event would otherwise
// grow the buffer without bound.
class SseFramer {
 public:
  explicit SseFramer(std::size_t max_event_bytes) : max_event_bytes_(max_event_bytes) {}

  // Adds bytes read from the stream; views returned by next_event() end here.
  void append(std::string_view bytes);
  // The next complete event, or nullopt until more bytes arrive.
  std::optional<std::string_view> next_event();
  // Whether next_event() would return an event (scanning what is new, consuming nothing).
  bool has_complete_event();
  // True when the unfinished event is already larger than the bound.
  bool oversized() const { return buffer_.size() - consumed_ > max_event_bytes_; }
  // Whether any unconsumed bytes are buffered.
  bool empty() const { return buffer_.size() == consumed_; }
  std::size_t max_event_bytes() const { return max_event_bytes_; }

 private:
  std::string buffer_;
  std::size_t consumed_ = 0;  // bytes of buffer_ already returned as events
  std::size_t scanned_ = 0;   // bytes of buffer_ known to hold no further event end
  std::size_t max_event_bytes_;
};

// The event's data payload: its `data:` lines (one optional space after the colon
// removed) joined by '\n' into `scratch` when there are several. Returns false when the
// event has no data line (comments, keep-alives).
bool sse_event_data(std::string_view event, std::string& scratch, std::string_view& data);

}  // namespace turnout::server
