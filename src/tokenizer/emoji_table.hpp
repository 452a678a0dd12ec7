#pragma once
// The tokens of every piece that is one character of U+1F000-U+1FFFF (most emoji: the
// four bytes F0 9F xx yy), alone or after a space, worked out once per encoding with the
// byte-pair merge itself. Chat text is full of such pieces (" 😀", "👍"), and no emoji
// is a single cl100k_base token: each piece cost a hash, a piece-cache probe and, the
// first time, a merge of bytes whose seams are in few tokens — for a table of 8,192
// answers (160 KB), read with no hash.
//
// Longer pieces that start so ("👋🏽", " 🇩🇪", "😀😀😀") are cut after the first
// character where no token holds the two bytes at the cut: every merge makes a token of
// the bytes on both sides of where it joins, so none can join across such a cut, and
// the two sides' tokens are exactly the piece's. The rest is answered by the general way,
// which gives a rest that is a whole token as that token without merging: exact because
// every token of both vocabularies merges to itself (Vocabulary.EveryTokenMergesToItself).
//
// A piece's tokens are a function of its bytes alone, so the table holds exactly what the
// merge gives for those bytes, whatever cut the piece; pieces whose merge gives more
// than kMaxTokens tokens (none in OpenAI's vocabularies) are not kept and go the general
// way.
#include "tokenizer/bpe.hpp"
#include "tokenizer/vocabulary.hpp"

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace turnout::tokenizer {

class EmojiPieceTable {
 public:
  static constexpr std::size_t kMaxTokens = 4;

  EmojiPieceTable(const Vocabulary& vocab, const BytePairMerger& merger) : vocab_(&vocab), entries_(2 * kCharacters) {
    MergeScratch scratch;
    std::vector<TokenId> tokens;
    for (std::size_t with_space = 0; with_space < 2; ++with_space) {
      for (std::uint32_t low = 0; low < kCharacters; ++low) {
        const char piece[5] = {' ', '\xf0', '\x9f', static_cast<char>(0x80 | (low >> 6)), static_cast<char>(0x80 | (low & 0x3f))};
        const char* start = with_space != 0 ? piece : piece + 1;
        tokens.clear();
        merger.merge_piece(start, 4 + with_space, [&tokens](TokenId token) { tokens.push_back(token); }, scratch);
        if (tokens.size() > kMaxTokens) continue;
        Entry& entry = entries_[with_space * kCharacters + low];
        entry.count = static_cast<std::uint8_t>(tokens.size());
        std::copy(tokens.begin(), tokens.end(), entry.tokens.begin());
      }
    }
  }

  // Whether `piece` (at least two bytes) may start with such a character: a test that
  // is never true in English and code, so it is predicted there. (A branch on the length,
  // or on the space, cost English 4-6%: pieces of 4-5 bytes and leading spaces come and
  // go at random there.)
  static bool may_lead(const char* piece) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(piece);
    return bytes[bytes[0] == ' ' ? 1 : 0] == 0xf0;
  }

  // What the table knows of the start of a piece: `tokens` of its first `length` bytes.
  struct Lead {
    std::span<const TokenId> tokens;  // empty: nothing
    std::size_t length = 0;
  };

  // If `piece` (at least two bytes) starts with one character of U+1F000-U+1FFFF, with or
  // without a space before it, and no token holds the byte before the end of that and
  // the byte after it (so no merge crosses there, and the rest of the piece merges on
  // its own: another emoji, a skin tone, a flag's second letter — no token holds a
  // continuation byte followed by F0 in cl100k_base or o200k_base), the tokens of that
  // start; else nothing.
  Lead lead_of(const char* piece, std::size_t length) const {
    const auto* bytes = reinterpret_cast<const unsigned char*>(piece);
    const std::size_t with_space = bytes[0] == ' ' ? 1 : 0;
    const unsigned char* character = bytes + with_space;
    if (character[0] != 0xf0) return {};
    const std::size_t end = with_space + 4;
    if (length < end || character[1] != 0x9f || (character[2] & 0xc0) != 0x80 || (character[3] & 0xc0) != 0x80 ||
        (length > end && vocab_->byte_pair_occurs_in_a_token(bytes[end - 1], bytes[end]))) {
      return {};
    }
    const Entry& entry = entries_[with_space * kCharacters + ((character[2] & 0x3fu) << 6) + (character[3] & 0x3fu)];
    return {{entry.tokens.data(), entry.count}, end};
  }

 private:
  static constexpr std::uint32_t kCharacters = 0x1000;  // U+1F000-U+1FFFF
  struct Entry {
    std::uint8_t count = 0;  // 0: not kept
    std::array<TokenId, kMaxTokens> tokens{};
  };
  const Vocabulary* vocab_;
  std::vector<Entry> entries_;  // without a space, then with one; by code point - 0x1F000
};

}  // namespace turnout::tokenizer
