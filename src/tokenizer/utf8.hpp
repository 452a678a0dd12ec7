#pragma once
// UTF-8 helpers for the tokenizer: validation, replacement of invalid sequences exactly
// as Python's bytes.decode("utf-8", errors="replace") does, and decoding of valid text.
#include <cstdint>
#include <string>
#include <string_view>

namespace turnout::tokenizer {

bool is_valid_utf8(std::string_view bytes);

// `bytes` with each maximal invalid subpart (Unicode's "maximal subpart" practice, which
// Python follows) replaced by U+FFFD.
std::string replace_invalid_utf8(std::string_view bytes);

struct DecodedChar {
  char32_t code_point;
  unsigned length;
};

// Decodes the character at `p`, which must start a complete, valid UTF-8 sequence.
inline DecodedChar decode_valid_utf8(const unsigned char* p) {
  const unsigned lead = p[0];
  if (lead < 0x80) return {lead, 1};
  if (lead < 0xe0) return {((lead & 0x1fu) << 6) | (p[1] & 0x3fu), 2};
  if (lead < 0xf0) return {((lead & 0x0fu) << 12) | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu), 3};
  return {((lead & 0x07u) << 18) | ((p[1] & 0x3fu) << 12) | ((p[2] & 0x3fu) << 6) | (p[3] & 0x3fu), 4};
}

}  // namespace turnout::tokenizer
