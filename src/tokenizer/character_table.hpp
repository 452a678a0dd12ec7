#pragma once
// What byte-pair merging does inside each character of the Basic Multilingual Plane
// (U+0000-U+FFFF), worked out once per vocabulary, so that pieces of non-Latin text can be
// merged character by character instead of byte by byte (character_merge.hpp).
//
// Why that is exact. Within a piece, tiktoken merges the lowest-ranked adjacent pair
// first. Call a token "ragged across characters" if it holds bytes of two or more
// characters and begins or ends inside one (" \xe5", a space and the first byte of a CJK
// character, is one). Where no such token can arise at a boundary (the boundary flags
// below), no merge ever joins part of a character to its neighbour, so a character's bytes
// merge among themselves exactly as they would alone:
// - a character whose bytes alone end as two or three tokens ("split") never joins
//   anything, and cuts the piece in two;
// - a character whose bytes alone end as one token gets it by its last internal merge,
//   at the token's own rank. Until then no pair with it exists; but if every token that
//   contains the character ranks above it (checked here for every token; a character
//   that fails is merged as bytes), no such pair could have merged before then anyway,
//   so taking the character whole from the start changes no merge and no merge's order.
// ASCII characters are single bytes, whole from the start. A character next to a
// boundary where a ragged token may arise is merged as bytes, like the byte-level merge.
#include "tokenizer/vocabulary.hpp"

#include <cstdint>
#include <vector>

namespace turnout::tokenizer {

class CharacterTable {
 public:
  // Entry bits. The low 24 hold the character's token (its rank) when it merges to one
  // (for ASCII, its byte's).
  static constexpr std::uint32_t kTokenMask = 0xffffff;
  static constexpr std::uint32_t kSplit = 1u << 25;        // merges alone to 2-3 tokens, never joins
  // Merged as bytes: a token containing it ranks below it, or its bytes alone do not
  // end at its own rank (neither happens in OpenAI's vocabularies but at ragged
  // boundaries), or a surrogate.
  static constexpr std::uint32_t kUnsupported = 1u << 26;
  // Boundary flags: the boundary between characters a and b can carry a ragged token if
  // (a & kBeforeTrailingPart and b & kHasTrailingPartPrefix) — a token ends with a whole a
  // followed by the first bytes of b — or (a & kHasLeadingPartSuffix and
  // b & kAfterLeadingPart) — a token starts with the last bytes of a, followed by b or
  // by the first bytes of b.
  static constexpr unsigned kBeforeTrailingPartBit = 28;
  static constexpr unsigned kHasTrailingPartPrefixBit = 29;
  static constexpr unsigned kHasLeadingPartSuffixBit = 30;
  static constexpr unsigned kAfterLeadingPartBit = 31;

  explicit CharacterTable(const Vocabulary& vocab);

  // The entry of code point `code_point` (below 0x10000).
  std::uint32_t entry(char32_t code_point) const { return entries_[code_point]; }

  // Whether a ragged token may arise across the boundary between characters with entries
  // `left` and `right`.
  static bool boundary_may_be_ragged(std::uint32_t left, std::uint32_t right) {
    return ((left >> kBeforeTrailingPartBit) & (right >> kHasTrailingPartPrefixBit) & 1) |
           ((left >> kHasLeadingPartSuffixBit) & (right >> kAfterLeadingPartBit) & 1);
  }

  // Whether some token may hold the characters `left` and `right` (below 0x10000, not
  // both ASCII) whole, one right after the other. False means no token does: a boundary
  // between two characters merged as one part each, where no ragged token may arise,
  // is then never merged across (every token across it would hold both characters whole),
  // so the piece's runs on either side merge independently (character_merge.hpp). A bit
  // per hash of the pair, set for every such pair in a token: o200k_base has 21k of
  // them, cl100k_base 1.9k; in a 32 KB table (as large as L1 itself, so mostly L2) about
  // 8% of the other pairs read true as well for o200k_base, under 1% for cl100k_base,
  // which only costs the cut. Bits are only ever set (in the constructor), so a pair some
  // token holds never reads false.
  bool bigram_may_occur(char32_t left, char32_t right) const {
    const std::size_t bit = bigram_bit(left, right);
    return ((bigrams_[bit / 64] >> (bit % 64)) & 1) != 0;
  }

  std::size_t memory_bytes() const {
    return entries_.capacity() * sizeof(std::uint32_t) + bigrams_.capacity() * sizeof(std::uint64_t);
  }

 private:
  static constexpr unsigned kBigramBits = 18;
  static std::size_t bigram_bit(char32_t left, char32_t right) {
    const std::uint64_t pair = (std::uint64_t{left} << 16) | right;
    return static_cast<std::size_t>((pair * 0x9e3779b97f4a7c15ULL) >> (64 - kBigramBits));
  }

  std::vector<std::uint32_t> entries_;  // 65536, by code point
  std::vector<std::uint64_t> bigrams_;  // see bigram_may_occur()
};

}  // namespace turnout::tokenizer
