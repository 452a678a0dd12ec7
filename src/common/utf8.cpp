#include "common/utf8.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace turnout {
namespace {

bool is_ascii_word(const char* p) {
  std::uint64_t word;
  std::memcpy(&word, p, 8);
  return (word & 0x8080808080808080ULL) == 0;
}

}  // namespace

std::size_t valid_utf8_prefix(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.size() - i >= 8 && is_ascii_word(text.data() + i)) {
      i += 8;
      continue;
    }
    const Utf8Sequence sequence = next_utf8_sequence(text, i);
    if (!sequence.valid) return i;
    i += sequence.length;
  }
  return text.size();
}

bool is_valid_utf8(std::string_view text) { return simdjson::validate_utf8(text.data(), text.size()); }

void append_utf8_repaired(std::string& out, std::string_view text) {
  // Written through a pointer into room made a block at a time, not appended a run at a
  // time: binary data read as text alternates invalid bytes with runs of one or two valid
  // characters, and two appends per invalid byte cost more than checking the bytes. An
  // input byte becomes at most 3 output bytes (an invalid byte becomes U+FFFD); a block's
  // last step may read up to 7 bytes past the block (an ASCII word or a character).
  constexpr std::size_t kBlockBytes = 16 * 1024;
  constexpr std::size_t kStepOverrun = 8;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t block_end = std::min(text.size(), i + kBlockBytes);
    const std::size_t written = out.size();
    out.resize(written + 3 * (block_end - i) + kStepOverrun);
    char* const first = out.data();
    char* o = first + written;
    while (i < block_end) {
      if (text.size() - i >= 8 && is_ascii_word(text.data() + i)) {
        std::memcpy(o, text.data() + i, 8);
        o += 8;
        i += 8;
        continue;
      }
      if (static_cast<unsigned char>(text[i]) < 0x80) {
        *o++ = text[i++];
        continue;
      }
      const Utf8Sequence sequence = next_utf8_sequence(text, i);
      if (sequence.valid) {
        std::memcpy(o, text.data() + i, sequence.length);
        o += sequence.length;
      } else {
        std::memcpy(o, kReplacementCharacter.data(), kReplacementCharacter.size());
        o += kReplacementCharacter.size();
      }
      i += sequence.length;
    }
    out.resize(static_cast<std::size_t>(o - first));
  }
}

std::string replace_invalid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 2);
  append_utf8_repaired(out, text);
  return out;
}

std::string_view as_valid_utf8(std::string_view text, std::string& scratch) {
  if (is_valid_utf8(text)) return text;
  scratch.clear();
  append_utf8_repaired(scratch, text);
  return scratch;
}

}  // namespace turnout
