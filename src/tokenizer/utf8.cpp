#include "tokenizer/utf8.hpp"

#include <cstring>

namespace turnout::tokenizer {
namespace {

// Length of the valid UTF-8 sequence at `p` (Unicode Table 3-7), or the length of its
// maximal invalid subpart negated (at least 1 byte) when it is not valid.
int valid_sequence_length(const unsigned char* p, const unsigned char* end) {
  const unsigned lead = p[0];
  if (lead < 0x80) return 1;
  int length = 0;
  unsigned second_min = 0x80;
  unsigned second_max = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) second_min = 0xa0;
    if (lead == 0xed) second_max = 0x9f;  // no surrogates
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) second_min = 0x90;
    if (lead == 0xf4) second_max = 0x8f;  // nothing above U+10FFFF
  } else {
    return -1;
  }
  for (int i = 1; i < length; ++i) {
    if (p + i >= end) return -i;
    const unsigned byte = p[i];
    const unsigned low = i == 1 ? second_min : 0x80;
    const unsigned high = i == 1 ? second_max : 0xbf;
    if (byte < low || byte > high) return -i;
  }
  return length;
}

bool is_ascii_word(const unsigned char* p) {
  std::uint64_t word;
  std::memcpy(&word, p, 8);
  return (word & 0x8080808080808080ULL) == 0;
}

// The end of the valid UTF-8 that starts at `p`: `end`, or the first byte of an invalid
// sequence.
const unsigned char* valid_prefix_end(const unsigned char* p, const unsigned char* end) {
  while (p < end) {
    if (end - p >= 8 && is_ascii_word(p)) {
      p += 8;
      continue;
    }
    const int length = valid_sequence_length(p, end);
    if (length < 0) return p;
    p += length;
  }
  return end;
}

}  // namespace

bool is_valid_utf8(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  return valid_prefix_end(p, p + bytes.size()) == p + bytes.size();
}

std::string replace_invalid_utf8(std::string_view bytes) {
  static constexpr std::string_view kReplacement = "\xef\xbf\xbd";
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 2);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const auto* end = p + bytes.size();
  while (p < end) {
    // Valid text is copied a run at a time, not a character at a time.
    const unsigned char* valid_end = valid_prefix_end(p, end);
    out.append(reinterpret_cast<const char*>(p), static_cast<std::size_t>(valid_end - p));
    p = valid_end;
    if (p < end) {
      out.append(kReplacement);
      p += -valid_sequence_length(p, end);
    }
  }
  return out;
}

}  // namespace turnout::tokenizer
