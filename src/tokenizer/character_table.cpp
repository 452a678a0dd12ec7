#include "tokenizer/character_table.hpp"

#include <algorithm>
#include <array>
#include <string_view>
#include <vector>

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
// ends inside; `valid` is false if no valid text contains the token.
struct TokenParts {
  bool valid = false;
  std::string_view leading_part;         // the last bytes of a character
  std::vector<std::string_view> whole;   // complete characters
  std::string_view trailing_part;        // the first bytes of a character
};

// Fills `parts` (reused, so its vector keeps its memory) for `token`.
void read_parts(std::string_view token, TokenParts& parts) {
  parts.valid = false;
  parts.trailing_part = {};
  parts.whole.clear();
  std::size_t i = 0;
  while (i < token.size() && is_continuation(static_cast<unsigned char>(token[i]))) ++i;
  if (i > 3) return;
  parts.leading_part = token.substr(0, i);
  while (i < token.size()) {
    const unsigned length = sequence_length(static_cast<unsigned char>(token[i]));
    if (length == 0) return;
    std::size_t j = i + 1;
    while (j < token.size() && j < i + length) {
      if (!is_continuation(static_cast<unsigned char>(token[j]))) return;
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
}

bool is_ascii(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// Sets of one- and two-byte parts of characters (the parts of BMP characters that can
// be proper prefixes or suffixes), as bit masks by part.
class PartSets {
 public:
  static constexpr std::uint8_t kTrailing = 1, kLoneTrailing = 2, kLeading = 4;
  void add(std::string_view part, std::uint8_t set) {
    if (part.size() == 1) one_byte_[static_cast<unsigned char>(part[0])] |= set;
    if (part.size() == 2) two_bytes_[index(part)] |= set;
  }
  std::uint8_t sets_of(std::string_view part) const {
    return part.size() == 1 ? one_byte_[static_cast<unsigned char>(part[0])] : two_bytes_[index(part)];
  }

 private:
  static std::size_t index(std::string_view part) {
    return (std::size_t{static_cast<unsigned char>(part[0])} << 8) | static_cast<unsigned char>(part[1]);
  }
  std::array<std::uint8_t, 256> one_byte_{};
  std::vector<std::uint8_t> two_bytes_ = std::vector<std::uint8_t>(65536, 0);
};

}  // namespace

CharacterTable::CharacterTable(const Vocabulary& vocab)
    : entries_(0x10000, 0), bigrams_((std::size_t{1} << kBigramBits) / 64, 0) {
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

  // The ragged tokens across characters, and the boundary flags they set: trailing parts
  // set kHasTrailingPartPrefix on the characters they start, lone trailing parts (after
  // only a leading part) kAfterLeadingPart, leading parts kHasLeadingPartSuffix on the
  // characters they end.
  PartSets part_sets;
  TokenParts parts;
  auto flag_whole = [&](std::string_view character, unsigned bit) {
    const char32_t code_point = decode(character);
    if (code_point < 0x10000) entries_[code_point] |= 1u << bit;
  };
  for (TokenId rank = 0; rank < vocab.size(); ++rank) {
    const std::string_view token = vocab.bytes_of(rank);
    if (is_ascii(token)) continue;  // most tokens: neither ragged nor holding a table character
    read_parts(token, parts);
    if (!parts.valid) continue;
    // The pairs of whole characters the token holds, for bigram_may_occur (a token no
    // valid text holds is never made, so it needs none).
    for (std::size_t i = 1; i < parts.whole.size(); ++i) {
      const char32_t left = decode(parts.whole[i - 1]);
      const char32_t right = decode(parts.whole[i]);
      if (left >= 0x10000 || right >= 0x10000) continue;
      const std::size_t bit = bigram_bit(left, right);
      bigrams_[bit / 64] |= std::uint64_t{1} << (bit % 64);
    }
    // A character merged as one part must rank below every token that contains it
    // (see the header); one that does not is merged as bytes.
    for (const std::string_view character : parts.whole) {
      const char32_t code_point = decode(character);
      if (code_point < 0x80 || code_point >= 0x10000 || character.size() == token.size()) continue;
      std::uint32_t& entry = entries_[code_point];
      if ((entry & (kSplit | kUnsupported)) == 0 && rank < (entry & kTokenMask)) entry |= kUnsupported;
    }
    const std::size_t characters =
        parts.whole.size() + (parts.leading_part.empty() ? 0 : 1) + (parts.trailing_part.empty() ? 0 : 1);
    const bool ragged = !parts.leading_part.empty() || !parts.trailing_part.empty();
    if (!ragged || characters < 2) continue;
    if (!parts.trailing_part.empty()) {
      part_sets.add(parts.trailing_part, PartSets::kTrailing);
      if (!parts.whole.empty()) {
        flag_whole(parts.whole.back(), kBeforeTrailingPartBit);
      } else {
        part_sets.add(parts.trailing_part, PartSets::kLoneTrailing);
      }
    }
    if (!parts.leading_part.empty()) {
      part_sets.add(parts.leading_part, PartSets::kLeading);
      if (!parts.whole.empty()) flag_whole(parts.whole.front(), kAfterLeadingPartBit);
    }
  }
  for (char32_t code_point = 0x80; code_point < 0x10000; ++code_point) {
    const UnitBytes unit = encode_bmp(code_point);
    const std::string_view bytes = unit.view();
    for (std::size_t length = 1; length < bytes.size(); ++length) {
      const std::uint8_t prefix_sets = part_sets.sets_of(bytes.substr(0, length));
      if ((prefix_sets & PartSets::kTrailing) != 0) entries_[code_point] |= 1u << kHasTrailingPartPrefixBit;
      if ((prefix_sets & PartSets::kLoneTrailing) != 0) entries_[code_point] |= 1u << kAfterLeadingPartBit;
      if ((part_sets.sets_of(bytes.substr(bytes.size() - length)) & PartSets::kLeading) != 0) {
        entries_[code_point] |= 1u << kHasLeadingPartSuffixBit;
      }
    }
  }
}

}  // namespace turnout::tokenizer
