#include "common/utf8.hpp"

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

void append_utf8_repaired(std::string& out, std::string_view text) {
  while (!text.empty()) {
    // Valid text is copied a run at a time, not a character at a time.
    const std::size_t valid = valid_utf8_prefix(text);
    out.append(text.substr(0, valid));
    text.remove_prefix(valid);
    if (text.empty()) break;
    out.append(kReplacementCharacter);
    text.remove_prefix(next_utf8_sequence(text, 0).length);
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
