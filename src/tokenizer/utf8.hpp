#pragma once
// UTF-8 for the tokenizer: validation and repair come from common/utf8.hpp (one copy for
// the whole gateway); decoding of text already known to be valid lives here, next to the
// pre-tokenizer that is its only user.
#include "common/utf8.hpp"

#include <cstdint>

namespace turnout::tokenizer {

using turnout::is_valid_utf8;
using turnout::replace_invalid_utf8;

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
