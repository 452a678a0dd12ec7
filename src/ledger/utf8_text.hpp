#pragma once
// UTF-8 checks for text the ledger stores or renders: request ids and model names come
// from clients and may hold any bytes.
#include <cstddef>
#include <string_view>

namespace turnout::ledger {

struct Utf8Sequence {
  std::size_t length;  // bytes consumed: the whole character, or the invalid part
  bool valid;
};

// The UTF-8 sequence starting at text[i]. An invalid one covers the maximal subpart of a
// well-formed sequence (or one byte), so it becomes one U+FFFD, as Python's
// errors="replace" and the tokenizer do.
inline Utf8Sequence next_utf8_sequence(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  std::size_t length = 0;
  unsigned char second_min = 0x80;
  unsigned char second_max = 0xBF;
  if (lead < 0x80) {
    return {1, true};
  } else if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    second_min = lead == 0xE0 ? 0xA0 : 0x80;  // no overlong forms
    second_max = lead == 0xED ? 0x9F : 0xBF;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    second_min = lead == 0xF0 ? 0x90 : 0x80;
    second_max = lead == 0xF4 ? 0x8F : 0xBF;  // nothing above U+10FFFF
  } else {
    return {1, false};
  }
  std::size_t consumed = 1;
  for (; consumed < length && i + consumed < text.size(); ++consumed) {
    const unsigned char next = byte(i + consumed);
    const unsigned char min = consumed == 1 ? second_min : 0x80;
    const unsigned char max = consumed == 1 ? second_max : 0xBF;
    if (next < min || next > max) {
      break;
    }
  }
  return {consumed, consumed == length};
}

}  // namespace turnout::ledger
