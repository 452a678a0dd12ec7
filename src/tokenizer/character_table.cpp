#include "tokenizer/character_table.hpp"

#include <algorithm>
#include <array>
#include <string_view>
#include <unordered_set>

namespace turnout::tokenizer {
namespace {

bool is_continuation(unsigned char byte) { return (byte & 0xc0) == 0x80; }

// The length of the UTF-8 sequence `lead` starts, or 0 if it cannot start one.
unsigned sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead < 0xe0) return 2;
  if (lead >= 0xe0 && lead < 0xf0) return 3;
  if (lead >= 0xf0 && lead < 0xf5) return 4;
  return 0;
}

// 1-3 bytes as one set key.
std::uint32_t key_of(std::string_view bytes) {
  std::uint32_t key = static_cast<std::uint32_t>(bytes.size()) << 24;
  for (std::size_t i = 0; i < bytes.size(); ++i) key |= std::uint32_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  return key;
}

struct UnitBytes {
  std::array<char, 3> bytes{};
  unsigned length = 0;
  std::string_view view() const { return {bytes.data(), length}; }
};

UnitBytes encode_bmp(char32_t code_point) {
  UnitBytes out;
  if (code_point < 0x80) {
    out.bytes[0] = static_cast<char>(code_point);
    out.length = 1;
  } else if (code_point < 0x800) {
    out.bytes[0] = static_cast<char>(0xc0 | (code_point >> 6));
    out.bytes[1] = static_cast<char>(0x80 | (code_point & 0x3f));
    out.length = 2;
  } else {
    out.bytes[0] = static_cast<char>(0xe0 | (code_point >> 12));
    out.bytes[1] = static_cast<char>(0x80 | ((code_point >> 6) & 0x3f));
    out.bytes[2] = static_cast<char>(0x80 | (code_point & 0x3f));
    out.length = 3;
  }
  return out;
}

// The code point of the complete sequence at `bytes` (valid structure assumed).
char32_t decode(std::string_view bytes) {
  const auto lead = static_cast<unsigned char>(bytes[0]);
  char32_t code_point = bytes.size() == 1 ? lead : lead & (0x7fu >> bytes.size());
  for (std::size_t i = 1; i < bytes.size(); ++i) code_point = (code_point << 6) | (static_cast<unsigned char>(bytes[i]) & 0x3fu);
  return code_point;
}

// What merging a character's bytes alone gives: its one token and the highest rank of
// the merges that made it, or kNoToken if it stays 2-3 tokens.
struct AloneMerge {
  TokenId token = kNoToken;
  TokenId completion_rank = kNoToken;
};

AloneMerge merge_alone(const Vocabulary& vocab, const UnitBytes& unit) {
  const auto* b = reinterpret_cast<const unsigned char*>(unit.bytes.data());
  if (unit.length == 2) {
    const TokenId rank = vocab.rank_of_byte_pair(b[0], b[1]);
    return {rank, rank};
  }
  const TokenId first_pair = vocab.rank_of_byte_pair(b[0], b[1]);
  const TokenId second_pair = vocab.rank_of_byte_pair(b[1], b[2]);
  const TokenId first_merge = std::min(first_pair, second_pair);
  if (first_merge == kNoToken) return {};
  // After either pair merges, the only pair left is the whole character.
  const TokenId whole = vocab.rank_of(unit.bytes.data(), 3);
  if (whole == kNoToken) return {};
  return {whole, std::max(first_merge, whole)};
}

// The parts of a token read as a piece of valid UTF-8: continuation bytes that end a
// character it starts inside, whole characters, and the first bytes of a character it
// ends inside. nullopt-like `valid = false` if no valid text contains the token.
struct TokenParts {
  bool valid = false;
  std::string_view leading_part;         // the last bytes of a character
  std::vector<std::string_view> whole;   // complete characters
  std::string_view trailing_part;        // the first bytes of a character
};

TokenParts parts_of(std::string_view token) {
  TokenParts parts;
  std::size_t i = 0;
  while (i < token.size() && is_continuation(static_cast<unsigned char>(token[i]))) ++i;
  if (i > 3) return parts;
  parts.leading_part = token.substr(0, i);
  while (i < token.size()) {
    const unsigned length = sequence_length(static_cast<unsigned char>(token[i]));
    if (length == 0) return parts;
    std::size_t j = i + 1;
    while (j < token.size() && j < i + length) {
      if (!is_continuation(static_cast<unsigned char>(token[j]))) return parts;
      ++j;
    }
    if (j - i < length) {
      parts.trailing_part = token.substr(i);
    } else {
      parts.whole.push_back(token.substr(i, length));
    }
    i = j;
  }
  parts.valid = true;
  return parts;
}

}  // namespace

CharacterTable::CharacterTable(const Vocabulary& vocab) : entries_(0x10000, 0) {
  for (char32_t code_point = 0; code_point < 0x10000; ++code_point) {
    if (code_point < 0x80) {
      entries_[code_point] = vocab.rank_of_byte(static_cast<unsigned char>(code_point));
      continue;
    }
    if (code_point >= 0xd800 && code_point < 0xe000) {  // surrogates: never in valid UTF-8
      entries_[code_point] = kUnsupported;
      continue;
    }
    const AloneMerge alone = merge_alone(vocab, encode_bmp(code_point));
    if (alone.token == kNoToken) {
      entries_[code_point] = kSplit;
    } else if (alone.completion_rank != alone.token) {
      entries_[code_point] = kUnsupported;
    } else {
      entries_[code_point] = alone.token;
    }
  }

  // The ragged tokens across characters, and the boundary flags they set.
  std::unordered_set<std::uint32_t> trailing_parts;        // kHasTrailingPartPrefix on characters so starting
  std::unordered_set<std::uint32_t> lone_trailing_parts;   // after only a leading part: kAfterLeadingPart
  std::unordered_set<std::uint32_t> leading_parts;         // kHasLeadingPartSuffix on characters so ending
  auto flag_whole = [&](std::string_view character, unsigned bit) {
    const char32_t code_point = decode(character);
    if (code_point < 0x10000) entries_[code_point] |= 1u << bit;
  };
  for (TokenId rank = 0; rank < vocab.size(); ++rank) {
    const TokenParts parts = parts_of(vocab.bytes_of(rank));
    if (!parts.valid) continue;
    // A character merged as one part must rank below every token that contains it
    // (see the header); one that does not is merged as bytes.
    for (const std::string_view character : parts.whole) {
      const char32_t code_point = decode(character);
      if (code_point < 0x80 || code_point >= 0x10000 || character.size() == vocab.bytes_of(rank).size()) continue;
      std::uint32_t& entry = entries_[code_point];
      if ((entry & (kSplit | kUnsupported)) == 0 && rank < (entry & kTokenMask)) entry |= kUnsupported;
    }
    const std::size_t characters =
        parts.whole.size() + (parts.leading_part.empty() ? 0 : 1) + (parts.trailing_part.empty() ? 0 : 1);
    const bool ragged = !parts.leading_part.empty() || !parts.trailing_part.empty();
    if (!ragged || characters < 2) continue;
    if (!parts.trailing_part.empty()) {
      trailing_parts.insert(key_of(parts.trailing_part));
      if (!parts.whole.empty()) {
        flag_whole(parts.whole.back(), kBeforeTrailingPartBit);
      } else {
        lone_trailing_parts.insert(key_of(parts.trailing_part));
      }
    }
    if (!parts.leading_part.empty()) {
      leading_parts.insert(key_of(parts.leading_part));
      if (!parts.whole.empty()) flag_whole(parts.whole.front(), kAfterLeadingPartBit);
    }
  }
  for (char32_t code_point = 0x80; code_point < 0x10000; ++code_point) {
    const UnitBytes unit = encode_bmp(code_point);
    const std::string_view bytes = unit.view();
    for (std::size_t length = 1; length < bytes.size(); ++length) {
      const std::uint32_t prefix = key_of(bytes.substr(0, length));
      if (trailing_parts.contains(prefix)) entries_[code_point] |= 1u << kHasTrailingPartPrefixBit;
      if (lone_trailing_parts.contains(prefix)) entries_[code_point] |= 1u << kAfterLeadingPartBit;
      if (leading_parts.contains(key_of(bytes.substr(bytes.size() - length)))) {
        entries_[code_point] |= 1u << kHasLeadingPartSuffixBit;
      }
    }
  }
}

}  // namespace turnout::tokenizer
