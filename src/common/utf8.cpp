#include "common/utf8.hpp"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

namespace turnout {
namespace {

bool is_ascii_word(const char* p) {
  std::uint64_t word;
  std::memcpy(&word, p, 8);
  return (word & 0x8080808080808080ULL) == 0;
}

// What a byte says about the sequence it starts (Unicode's Table 3-7): its length (1 for
// ASCII, 0 for a byte that starts none) and the range its second byte must be in.
struct LeadByte {
  std::uint8_t length;
  std::uint8_t second_min;
  std::uint8_t second_max;
};

constexpr std::array<LeadByte, 256> make_lead_bytes() {
  std::array<LeadByte, 256> leads{};
  for (unsigned byte = 0; byte < 256; ++byte) {
    LeadByte lead{0, 0x80, 0xbf};
    if (byte < 0x80) lead.length = 1;
    if (byte >= 0xc2 && byte <= 0xdf) lead.length = 2;
    if (byte >= 0xe0 && byte <= 0xef) lead.length = 3;
    if (byte >= 0xf0 && byte <= 0xf4) lead.length = 4;
    if (byte == 0xe0) lead.second_min = 0xa0;  // no overlong forms
    if (byte == 0xed) lead.second_max = 0x9f;  // no surrogates
    if (byte == 0xf0) lead.second_min = 0x90;
    if (byte == 0xf4) lead.second_max = 0x8f;  // nothing above U+10FFFF
    leads[byte] = lead;
  }
  return leads;
}
constexpr std::array<LeadByte, 256> kLeadBytes = make_lead_bytes();

// One step of the repair at `p`, which has at least 4 bytes after it: next_utf8_sequence
// without a branch on the bytes (in binary data every one of them is a coin toss for the
// predictor). Writes 4 bytes at `o` (the sequence or U+FFFD; the caller's room allows the
// excess, which the next step overwrites); returns {bytes consumed, bytes written}.
struct RepairStep {
  unsigned consumed;
  unsigned written;
};
inline RepairStep repair_step(const unsigned char* p, char* o) {
  const LeadByte lead = kLeadBytes[p[0]];
  const bool second = (lead.length >= 2) & (p[1] >= lead.second_min) & (p[1] <= lead.second_max);
  const bool third = second & (lead.length >= 3) & ((p[2] & 0xc0) == 0x80);
  const bool fourth = third & (lead.length == 4) & ((p[3] & 0xc0) == 0x80);
  const unsigned consumed = 1u + second + third + fourth;
  const bool valid = consumed == lead.length;
  constexpr char kReplacementBytes[4] = {'\xef', '\xbf', '\xbd', 0};
  std::uint32_t replacement;
  std::memcpy(&replacement, kReplacementBytes, 4);
  std::uint32_t sequence;
  std::memcpy(&sequence, p, 4);
  const std::uint32_t word = valid ? sequence : replacement;
  std::memcpy(o, &word, 4);
  return {consumed, valid ? consumed : 3u};
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
  // last step may read up to 10 bytes past the block (up to 7 ASCII bytes, then a
  // character) and writes at most 8 bytes more than it consumes.
  static_assert(std::endian::native == std::endian::little, "the ASCII run is found from the low byte up");
  constexpr std::size_t kBlockBytes = 16 * 1024;
  constexpr std::size_t kStepOverrun = 16;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t block_end = std::min(text.size(), i + kBlockBytes);
    const std::size_t written = out.size();
    out.resize(written + 3 * (block_end - i) + kStepOverrun);
    char* const first = out.data();
    char* o = first + written;
    while (i < block_end) {
      if (text.size() - i >= 8) {
        // The ASCII bytes before the next non-ASCII one, copied in one move: binary data
        // has runs of 1-7 of them, which would otherwise take a repair step each.
        std::uint64_t word;
        std::memcpy(&word, text.data() + i, 8);
        std::memcpy(o, &word, 8);
        const std::uint64_t high_bits = word & 0x8080808080808080ULL;
        if (high_bits == 0) {
          o += 8;
          i += 8;
          continue;
        }
        const auto ascii_bytes = static_cast<std::size_t>(std::countr_zero(high_bits) / 8);
        o += ascii_bytes;
        i += ascii_bytes;
      }
      if (text.size() - i >= 4) {
        const RepairStep step = repair_step(reinterpret_cast<const unsigned char*>(text.data()) + i, o);
        i += step.consumed;
        o += step.written;
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
  // Room for the worst case (3 bytes out per byte in, and a step's overrun), so the repair
  // never moves what it has written: binary data read as text grows by about half and more
  // (each invalid byte becomes 3), and a reserve of 1.5x made a 12 MB file's repair copy
  // its output once more, with a page fault per 4 KB of the new buffer (a tenth of
  // `turnout tokens` on such a file). Pages never written are never backed, but the
  // address space is: past 64 MB of input the reserve falls back to 1.5x, so a large file
  // with one bad byte does not ask for three times its size (refused under strict
  // overcommit or a `ulimit -v`), and the repair grows its output itself if it must (for
  // binary input that growth holds the 1.5x buffer and a larger one at once: rare, and
  // only for a file that is not text).
  constexpr std::size_t kWorstCaseReserveLimit = std::size_t{64} << 20;
  std::string out;
  out.reserve(text.size() <= kWorstCaseReserveLimit ? 3 * text.size() + 16 : text.size() + text.size() / 2);
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
