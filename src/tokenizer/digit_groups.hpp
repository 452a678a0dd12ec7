#pragma once
// The tokens of every group of two or three ASCII digits, looked up in a 4.4 KB table
// instead of the piece cache and the vocabulary. Both encodings split numbers into groups
// of 1-3 digits (`\p{N}{1,3}`), so a run of digits is nearly all such pieces, and each
// one cost a hash, a piece-cache probe (its megabyte of entries does not stay in L1) and,
// the first time, a vocabulary probe — for a table of 1,100 answers.
//
// The table only caches Vocabulary::rank_of for these strings, read from the vocabulary
// when it is built: a group that is not a whole token (none in cl100k_base or o200k_base,
// but a vocabulary is not assumed to have them all) holds kNoToken and goes the general
// way. A piece that is a whole token is that token under byte-pair merging, so the answer
// does not depend on how the pre-tokenizer cut the piece.
#include "tokenizer/vocabulary.hpp"

#include <array>
#include <cstdint>

namespace turnout::tokenizer {

class DigitGroupTable {
 public:
  explicit DigitGroupTable(const Vocabulary& vocab) {
    for (unsigned value = 0; value < 100; ++value) {
      const char two[2] = {static_cast<char>('0' + value / 10), static_cast<char>('0' + value % 10)};
      tokens_[value] = vocab.rank_of(two, 2);
    }
    for (unsigned value = 0; value < 1000; ++value) {
      const char three[3] = {static_cast<char>('0' + value / 100), static_cast<char>('0' + value / 10 % 10),
                             static_cast<char>('0' + value % 10)};
      tokens_[kThreeDigitBase + value] = vocab.rank_of(three, 3);
    }
  }

  // The token of `piece` if it is two or three ASCII digits that form one token, else
  // kNoToken.
  TokenId token_of(const char* piece, std::size_t length) const {
    if (length < 2 || length > 3) return kNoToken;
    const auto* bytes = reinterpret_cast<const unsigned char*>(piece);
    const unsigned first = bytes[0] - unsigned{'0'};
    const unsigned second = bytes[1] - unsigned{'0'};
    if (first > 9 || second > 9) return kNoToken;
    if (length == 2) return tokens_[first * 10 + second];
    const unsigned third = bytes[2] - unsigned{'0'};
    if (third > 9) return kNoToken;
    return tokens_[kThreeDigitBase + first * 100 + second * 10 + third];
  }

 private:
  static constexpr std::size_t kThreeDigitBase = 100;
  std::array<TokenId, kThreeDigitBase + 1000> tokens_{};  // two-digit groups, then three-digit
};

}  // namespace turnout::tokenizer
