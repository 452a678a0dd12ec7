// Image dimensions from base64 data: URLs (PNG, JPEG, GIF, WebP), for the image token
// formula. Reads only the header bytes it needs, decoding them straight from the base64
// text: a multi-megabyte image costs a few dozen character lookups, and no allocation.
#include "tokenizer/chat_count.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace turnout::tokenizer {
namespace {

// Value of a base64 character, -1 for anything else ('=' padding included). Both the
// standard and the URL-safe alphabet are accepted: clients produce either.
constexpr std::array<std::int8_t, 256> make_base64_values() {
  std::array<std::int8_t, 256> values{};
  values.fill(-1);
  for (int i = 0; i < 26; ++i) {
    values['A' + i] = static_cast<std::int8_t>(i);
    values['a' + i] = static_cast<std::int8_t>(26 + i);
  }
  for (int i = 0; i < 10; ++i) values['0' + i] = static_cast<std::int8_t>(52 + i);
  values['+'] = values['-'] = 62;
  values['/'] = values['_'] = 63;
  return values;
}

// Random access to the bytes encoded by base64 text. Byte k depends only on characters
// 4*(k/3) + k%3 and the one after it, so a reader can jump over a 60 KB EXIF block in a
// JPEG without decoding it. Text with line breaks (MIME style) reads as malformed: data:
// URLs do not wrap, and an unreadable header only means the default image cost.
class Base64Bytes {
 public:
  explicit Base64Bytes(std::string_view encoded) : encoded_(encoded) {}

  // The byte at `offset`, or nullopt past the end, at padding, or on a bad character.
  std::optional<std::uint8_t> at(std::size_t offset) const {
    if (offset >= encoded_.size()) return std::nullopt;  // also keeps the index below in range
    const std::size_t shift_in_quad = offset % 3;
    const std::size_t first = offset / 3 * 4 + shift_in_quad;
    if (first + 1 >= encoded_.size()) return std::nullopt;
    const int high = value_of(encoded_[first]);
    const int low = value_of(encoded_[first + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    // Each byte takes the low (6 - 2k) bits of character k and the top (2 + 2k) bits of
    // the next one (k = 0, 1, 2 within the quad).
    const unsigned high_bits = static_cast<unsigned>(high) << (2 + 2 * shift_in_quad);
    const unsigned low_bits = static_cast<unsigned>(low) >> (4 - 2 * shift_in_quad);
    return static_cast<std::uint8_t>((high_bits | low_bits) & 0xFFu);
  }

  std::optional<std::uint32_t> big_endian(std::size_t offset, std::size_t width) const {
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < width; ++i) {
      const auto byte = at(offset + i);
      if (!byte) return std::nullopt;
      value = (value << 8) | *byte;
    }
    return value;
  }

  std::optional<std::uint32_t> little_endian(std::size_t offset, std::size_t width) const {
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < width; ++i) {
      const auto byte = at(offset + i);
      if (!byte) return std::nullopt;
      value |= static_cast<std::uint32_t>(*byte) << (8 * i);
    }
    return value;
  }

  bool matches(std::size_t offset, std::string_view expected) const {
    for (std::size_t i = 0; i < expected.size(); ++i) {
      const auto byte = at(offset + i);
      if (!byte || *byte != static_cast<std::uint8_t>(expected[i])) return false;
    }
    return true;
  }

 private:
  static int value_of(char c) {
    static constexpr auto kValues = make_base64_values();
    return kValues[static_cast<unsigned char>(c)];
  }

  std::string_view encoded_;
};

std::optional<ImageSize> nonzero_size(std::optional<std::uint32_t> width,
                                      std::optional<std::uint32_t> height) {
  if (!width || !height || *width == 0 || *height == 0) return std::nullopt;
  return ImageSize{*width, *height};
}

// PNG: 8-byte signature, then the IHDR chunk (length, "IHDR", width, height, big-endian).
std::optional<ImageSize> png_size(const Base64Bytes& bytes) {
  if (!bytes.matches(12, "IHDR")) return std::nullopt;
  return nonzero_size(bytes.big_endian(16, 4), bytes.big_endian(20, 4));
}

// GIF: "GIF87a"/"GIF89a", then the logical screen width and height (little-endian).
std::optional<ImageSize> gif_size(const Base64Bytes& bytes) {
  return nonzero_size(bytes.little_endian(6, 2), bytes.little_endian(8, 2));
}

// WebP: "RIFF" size "WEBP", then the first chunk at offset 12, its payload at 20.
std::optional<ImageSize> webp_size(const Base64Bytes& bytes) {
  constexpr std::size_t kPayload = 20;
  if (bytes.matches(12, "VP8 ")) {
    // Lossy: 3-byte frame tag, start code 9d 01 2a, then 14-bit width and height (the
    // top two bits of each are an upscaling hint, not part of the size).
    if (!bytes.matches(kPayload + 3, "\x9d\x01\x2a")) return std::nullopt;
    const auto width = bytes.little_endian(kPayload + 6, 2);
    const auto height = bytes.little_endian(kPayload + 8, 2);
    if (!width || !height) return std::nullopt;
    return nonzero_size(*width & 0x3FFFu, *height & 0x3FFFu);
  }
  if (bytes.matches(12, "VP8L")) {
    // Lossless: signature byte 0x2f, then width-1 and height-1 as two 14-bit fields.
    if (!bytes.matches(kPayload, "\x2f")) return std::nullopt;
    const auto bits = bytes.little_endian(kPayload + 1, 4);
    if (!bits) return std::nullopt;
    return ImageSize{(*bits & 0x3FFFu) + 1, ((*bits >> 14) & 0x3FFFu) + 1};
  }
  if (bytes.matches(12, "VP8X")) {
    // Extended: flags and 3 reserved bytes, then canvas width-1 and height-1 (24-bit).
    const auto width_minus_one = bytes.little_endian(kPayload + 4, 3);
    const auto height_minus_one = bytes.little_endian(kPayload + 7, 3);
    if (!width_minus_one || !height_minus_one) return std::nullopt;
    return ImageSize{*width_minus_one + 1, *height_minus_one + 1};
  }
  return std::nullopt;
}

// Start-of-frame markers C0..CF carry the frame size, except C4 (DHT), C8 (JPG, reserved)
// and CC (DAC), which share the range.
bool is_start_of_frame(std::uint8_t marker) {
  return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
}

// Markers without a length field: TEM, RST0..RST7, SOI.
bool is_standalone(std::uint8_t marker) {
  return marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8);
}

// JPEG: walk the marker segments after SOI until a start-of-frame, whose payload is
// precision (1 byte), height, width (big-endian). Every step moves forward and every read
// is bounds-checked, so hostile lengths end the walk instead of looping or overreading.
std::optional<ImageSize> jpeg_size(const Base64Bytes& bytes) {
  std::size_t position = 2;  // after FF D8
  while (true) {
    const auto lead = bytes.at(position);
    if (!lead || *lead != 0xFF) return std::nullopt;
    // A marker may be preceded by any number of FF fill bytes.
    std::optional<std::uint8_t> marker;
    do {
      ++position;
      marker = bytes.at(position);
    } while (marker && *marker == 0xFF);
    if (!marker) return std::nullopt;
    const std::size_t segment = position + 1;  // first byte after the marker
    if (is_standalone(*marker)) {
      position = segment;
      continue;
    }
    // EOI or start of scan before any frame header: there is no size to find.
    if (*marker == 0xD9 || *marker == 0xDA) return std::nullopt;
    if (is_start_of_frame(*marker)) {
      // Segment: length (2), precision (1), height (2), width (2).
      const auto height = bytes.big_endian(segment + 3, 2);
      const auto width = bytes.big_endian(segment + 5, 2);
      return nonzero_size(width, height);
    }
    const auto length = bytes.big_endian(segment, 2);  // includes its own two bytes
    if (!length || *length < 2) return std::nullopt;
    position = segment + *length;
  }
}

std::optional<ImageSize> image_size_from_bytes(const Base64Bytes& bytes) {
  if (bytes.matches(0, "\x89PNG\r\n\x1a\n")) return png_size(bytes);
  if (bytes.matches(0, "\xff\xd8")) return jpeg_size(bytes);
  if (bytes.matches(0, "GIF87a") || bytes.matches(0, "GIF89a")) return gif_size(bytes);
  if (bytes.matches(0, "RIFF") && bytes.matches(8, "WEBP")) return webp_size(bytes);
  return std::nullopt;
}

bool equals_ignoring_ascii_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// The base64 text of "data:[<media type>][;params];base64,<data>". The media type is not
// trusted: the bytes are sniffed, since clients mislabel PNGs as JPEGs and vice versa.
std::optional<std::string_view> base64_payload(std::string_view url) {
  constexpr std::string_view kScheme = "data:";
  constexpr std::string_view kBase64Marker = ";base64";
  if (url.size() < kScheme.size() || !equals_ignoring_ascii_case(url.substr(0, kScheme.size()), kScheme)) {
    return std::nullopt;
  }
  const std::size_t comma = url.find(',');
  if (comma == std::string_view::npos) return std::nullopt;
  const std::string_view header = url.substr(kScheme.size(), comma - kScheme.size());
  if (header.size() < kBase64Marker.size() ||
      !equals_ignoring_ascii_case(header.substr(header.size() - kBase64Marker.size()), kBase64Marker)) {
    return std::nullopt;
  }
  return url.substr(comma + 1);
}

}  // namespace

std::optional<ImageSize> image_size_from_data_url(std::string_view url) {
  const auto payload = base64_payload(url);
  if (!payload) return std::nullopt;
  return image_size_from_bytes(Base64Bytes(*payload));
}

}  // namespace turnout::tokenizer
