#pragma once
// UTF-8 validation and repair: the one copy every stage uses (tokenizer, ledger, stats,
// export, JSON writing). Invalid input is repaired the way Python's
// bytes.decode("utf-8", errors="replace") does it: each maximal invalid subpart (Unicode's
// recommended practice, Table 3-7 ranges) becomes one U+FFFD.
#include <cstddef>
#include <string>
#include <string_view>

namespace turnout {

inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

struct Utf8Sequence {
  std::size_t length;  // bytes consumed: the whole character, or the invalid part (>= 1)
  bool valid;
};

// The UTF-8 sequence starting at text[i] (i < text.size()). An invalid one covers the
// maximal subpart of a well-formed sequence, or one byte.
inline Utf8Sequence next_utf8_sequence(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return {1, true};
  std::size_t length = 0;
  unsigned char second_min = 0x80;
  unsigned char second_max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
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
    if (next < min || next > max) break;
  }
  return {consumed, consumed == length};
}

// Length of the longest valid UTF-8 prefix of `text` (ASCII is skipped 8 bytes at a time).
std::size_t valid_utf8_prefix(std::string_view text);

// Whether all of `text` is valid UTF-8 (simdjson's SIMD validator: the tokenizer checks
// every text it counts, and non-Latin text would otherwise be checked a character at a time).
bool is_valid_utf8(std::string_view text);

// Appends `text` to `out` with each maximal invalid subpart replaced by U+FFFD.
void append_utf8_repaired(std::string& out, std::string_view text);

// `text` repaired (see append_utf8_repaired).
std::string replace_invalid_utf8(std::string_view text);

// `text` itself when it is valid (no copy), else its repaired copy built in `scratch`.
std::string_view as_valid_utf8(std::string_view text, std::string& scratch);

}  // namespace turnout
