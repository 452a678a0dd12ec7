#include "tracing/trace_context.hpp"

#include <algorithm>
#include <cmath>

namespace turnout::tracing {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is invalid in traceparent
}

// Exactly 2*N lower-case hex digits into `out`.
template <std::size_t N>
bool read_hex(std::string_view text, std::array<std::uint8_t, N>& out) {
  if (text.size() != 2 * N) return false;
  for (std::size_t i = 0; i < N; ++i) {
    const int high = hex_digit(text[2 * i]);
    const int low = hex_digit(text[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    out[i] = static_cast<std::uint8_t>(high * 16 + low);
  }
  return true;
}

template <std::size_t N>
bool all_zero(const std::array<std::uint8_t, N>& id) {
  return std::all_of(id.begin(), id.end(), [](std::uint8_t b) { return b == 0; });
}

template <std::size_t N>
std::array<std::uint8_t, N> random_id(std::mt19937_64& rng) {
  std::array<std::uint8_t, N> id{};
  do {
    for (std::size_t i = 0; i < N; i += 8) {
      const std::uint64_t word = rng();
      for (std::size_t j = 0; j < 8 && i + j < N; ++j) id[i + j] = static_cast<std::uint8_t>(word >> (8 * j));
    }
  } while (all_zero(id));
  return id;
}

}  // namespace

std::optional<ParentContext> parse_traceparent(std::string_view header) {
  // version "-" trace-id "-" parent-id "-" flags: 2+1+32+1+16+1+2 = 55 characters.
  constexpr std::size_t kLength = 55;
  if (header.size() < kLength) return std::nullopt;
  std::array<std::uint8_t, 1> version{};
  if (!read_hex(header.substr(0, 2), version) || version[0] == 0xff) return std::nullopt;
  if (version[0] == 0 ? header.size() != kLength : header.size() > kLength && header[kLength] != '-') {
    return std::nullopt;
  }
  if (header[2] != '-' || header[35] != '-' || header[52] != '-') return std::nullopt;
  ParentContext parent;
  std::array<std::uint8_t, 1> flags{};
  if (!read_hex(header.substr(3, 32), parent.trace_id) || !read_hex(header.substr(36, 16), parent.span_id) ||
      !read_hex(header.substr(53, 2), flags)) {
    return std::nullopt;
  }
  if (all_zero(parent.trace_id) || all_zero(parent.span_id)) return std::nullopt;
  parent.sampled = (flags[0] & 0x01) != 0;
  return parent;
}

std::string hex_id(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const std::uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0x0f]);
  }
  return out;
}

std::string format_traceparent(const TraceId& trace_id, const SpanId& span_id, bool sampled) {
  return "00-" + hex_id(trace_id) + "-" + hex_id(span_id) + (sampled ? "-01" : "-00");
}

TraceId random_trace_id(std::mt19937_64& rng) { return random_id<16>(rng); }
SpanId random_span_id(std::mt19937_64& rng) { return random_id<8>(rng); }

bool sampled_at_ratio(const TraceId& trace_id, double ratio) {
  if (ratio >= 1) return true;
  if (!(ratio > 0)) return false;
  // The id's last 8 bytes as a big-endian number, compared with ratio * 2^64.
  std::uint64_t low = 0;
  for (std::size_t i = 8; i < 16; ++i) low = (low << 8) | trace_id[i];
  return static_cast<double>(low) < std::ldexp(ratio, 64);
}

}  // namespace turnout::tracing
