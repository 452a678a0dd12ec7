// EmojiPieceTable: the tokens it holds for every character of U+1F000-U+1FFFF, alone and
// after a space, must be what tiktoken's byte-by-byte rule gives (the naive merge,
// tests/support/naive_bpe.hpp); pieces it does not describe must not be answered, nor
// cut where a token may join the two sides; and text full of emoji (sequences, skin
// tones, flags, ZWJ families) must encode, through the whole tokenizer, to the naive
// merge's ids.
#include "naive_bpe.hpp"
#include "tiktoken_text.hpp"
#include "tokenizer/bpe.hpp"
#include "tokenizer/character_table.hpp"
#include "tokenizer/embedded_vocabularies.hpp"
#include "tokenizer/emoji_table.hpp"
#include "tokenizer/pretokenizer.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/vocabulary.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace {

using namespace turnout::tokenizer;

struct Fixture {
  Vocabulary vocab;
  CharacterTable characters;
  BytePairMerger merger;
  EmojiPieceTable table;
  explicit Fixture(std::string_view tiktoken)
      : vocab(Vocabulary::from_tiktoken(tiktoken).value()), characters(vocab), merger(vocab, &characters),
        table(vocab, merger) {}
};

const Fixture& fixture(EncodingId id) {
  static const Fixture cl100k(embedded_cl100k_base_tiktoken());
  static const Fixture o200k(embedded_o200k_base_tiktoken());
  return id == EncodingId::cl100k_base ? cl100k : o200k;
}

std::string utf8_of_astral(char32_t code_point) {
  return {static_cast<char>(0xf0 | (code_point >> 18)), static_cast<char>(0x80 | ((code_point >> 12) & 0x3f)),
          static_cast<char>(0x80 | ((code_point >> 6) & 0x3f)), static_cast<char>(0x80 | (code_point & 0x3f))};
}

std::vector<TokenId> naive(const Vocabulary& vocab, const std::string& piece) {
  std::vector<TokenId> tokens;
  test::naive_merge(vocab, piece, tokens);
  return tokens;
}

class EmojiPieceTableTest : public testing::TestWithParam<EncodingId> {};

TEST_P(EmojiPieceTableTest, EveryCharacterAloneAndAfterASpaceHasTheNaiveMergesTokens) {
  const Fixture& f = fixture(GetParam());
  for (char32_t code_point = 0x1f000; code_point <= 0x1ffff; ++code_point) {
    for (const std::string& piece : {utf8_of_astral(code_point), " " + utf8_of_astral(code_point)}) {
      const EmojiPieceTable::Lead lead = f.table.lead_of(piece.data(), piece.size());
      // OpenAI's vocabularies merge each of these pieces to at most four tokens: all kept.
      ASSERT_FALSE(lead.tokens.empty()) << std::hex << static_cast<std::uint32_t>(code_point);
      ASSERT_EQ(lead.length, piece.size());
      ASSERT_EQ(std::vector<TokenId>(lead.tokens.begin(), lead.tokens.end()), naive(f.vocab, piece))
          << std::hex << static_cast<std::uint32_t>(code_point);
    }
  }
}

TEST_P(EmojiPieceTableTest, OtherPiecesAreNotAnswered) {
  const Fixture& f = fixture(GetParam());
  for (const std::string& piece : {
           std::string("\xf0\x9f\x98"),              // too short
           std::string(" \xf0\x9f\x98"),             // too short after a space
           std::string("  \xf0\x9f\x98\x80"),         // two spaces
           std::string("a\xf0\x9f\x98\x80"),          // not a space before it
           utf8_of_astral(0x1e900),                   // another plane-1 block
           utf8_of_astral(0x2f800),                   // beyond plane 1
           std::string("\xe2\x98\x80\x20"),           // U+2600 and a space
           std::string("four"), std::string(" five"),
       }) {
    EXPECT_TRUE(f.table.lead_of(piece.data(), piece.size()).tokens.empty()) << piece;
  }
}

TEST_P(EmojiPieceTableTest, PiecesAreCutOnlyWhereTheTwoSidesMergeApart) {
  const Fixture& f = fixture(GetParam());
  const std::string wave = utf8_of_astral(0x1f44b);
  const std::string smile = utf8_of_astral(0x1f642);
  // Another 4-byte character follows: no token holds a continuation byte then F0.
  const std::string toned = " " + wave + utf8_of_astral(0x1f3fd);
  EXPECT_EQ(f.table.lead_of(toned.data(), toned.size()).length, 5u);
  // " 🙂\n\n" is a cl100k_base token: no cut before its newlines.
  const std::string smile_lines = " " + smile + "\n\n";
  if (GetParam() == EncodingId::cl100k_base) {
    EXPECT_TRUE(f.table.lead_of(smile_lines.data(), smile_lines.size()).tokens.empty());
  }
  for (const std::string& piece : {toned, smile_lines, wave + wave + wave, " " + wave + "!", wave + "\xe2\x80\x8d" + smile,
                                   utf8_of_astral(0x1f1e9) + utf8_of_astral(0x1f1ea), smile + "\xef\xb8\x8f"}) {
    const EmojiPieceTable::Lead lead = f.table.lead_of(piece.data(), piece.size());
    if (lead.tokens.empty()) continue;
    // Where it cuts, the piece's tokens are the lead's and then the rest's, merged apart.
    std::vector<TokenId> cut(lead.tokens.begin(), lead.tokens.end());
    test::naive_merge(f.vocab, std::string_view(piece).substr(lead.length), cut);
    EXPECT_EQ(cut, naive(f.vocab, piece)) << piece;
  }
}

// A piece whose merge gives more than kMaxTokens tokens is not kept and goes the general
// way. OpenAI's vocabularies have none, so a vocabulary of the 256 single bytes alone:
// there " 😀" is five tokens (not kept) and "😀" four (kept); no byte pair is in a token,
// so every emoji is cut from what follows. What the piece loop does (tokenizer.cpp:
// leads while the table answers, then the rest merged) must still give the naive merge's
// tokens. (The loop itself runs only inside an Encoding, which is built from the
// embedded vocabularies alone; this replays its steps on the table.) A lead after the
// first never has a space, so at most four tokens: only a spaced first lead can go
// unanswered.
TEST(EmojiPieceTableBytesOnly, PiecesOfMoreThanMaxTokensAreNotAnsweredAndGoTheGeneralWay) {
  const Fixture f(test::tiktoken_text({}));
  const std::string grin = utf8_of_astral(0x1f600);
  const std::string spaced = " " + grin;
  EXPECT_TRUE(f.table.lead_of(spaced.data(), spaced.size()).tokens.empty());
  EXPECT_EQ(f.table.lead_of(grin.data(), grin.size()).tokens.size(), 4u);
  for (const std::string& piece : {spaced, spaced + grin + grin, grin + " " + grin + grin, grin + grin + "ok",
                                   spaced + "\n\n", grin + utf8_of_astral(0x1f3fd) + "\xe2\x80\x8d"}) {
    std::vector<TokenId> tokens;
    std::size_t at = 0;
    std::size_t leads = 0;
    for (;;) {
      const EmojiPieceTable::Lead lead = f.table.lead_of(piece.data() + at, piece.size() - at);
      if (lead.tokens.empty()) break;
      tokens.insert(tokens.end(), lead.tokens.begin(), lead.tokens.end());
      at += lead.length;
      ++leads;
      if (piece.size() - at < 2) break;
    }
    EXPECT_EQ(leads == 0, piece[0] == ' ') << piece;
    test::naive_merge(f.vocab, std::string_view(piece).substr(at), tokens);
    EXPECT_EQ(tokens, naive(f.vocab, piece)) << piece;
    EXPECT_EQ(tokens.size(), piece.size()) << piece;  // bytes only: one token per byte
  }
}

template <class Scanner>
void expect_emoji_text_matches_naive(EncodingId id) {
  const Encoding& encoding = Encoding::get(id);
  const Vocabulary& vocab = fixture(id).vocab;
  std::mt19937 random(22);
  for (int round = 0; round < 200; ++round) {
    std::string text;
    while (text.size() < 400) {
      const unsigned kind = random() % 14;
      if (kind == 0) text += ' ';
      if (kind == 1) text += " ok";
      if (kind == 2) text += '\n';
      if (kind == 3) text += "\xe2\x9d\xa4\xef\xb8\x8f";  // U+2764 U+FE0F
      if (kind == 4) text += "\xe2\x80\x8d";              // U+200D, joining a ZWJ sequence
      if (kind == 5) text += "!";
      // Most often one of a few common emoji, so that their pieces repeat (the piece cache).
      const char32_t code_point = random() % 2 == 0 ? 0x1f600 + random() % 8 : 0x1f000 + random() % 0x1000;
      text += utf8_of_astral(code_point);
      if (kind == 6) text += utf8_of_astral(0x1f3fb + random() % 5);  // a skin tone
      if (kind == 7) text += utf8_of_astral(0x1f1e6 + random() % 26);  // a flag's second letter
      if (kind == 8) text += "\n\n";
      // Right after the emoji, where the cut hands the rest of its piece to the general
      // way: letters (an emoji is a letter run's optional first character: "😂ok"), U+FE0F
      // (o200k's \p{M} in a letter piece), a skin tone then ZWJ, and '/' (o200k's
      // punctuation run ends in [\r\n/]*).
      if (kind == 9) text += random() % 2 == 0 ? "ok" : "Hello";
      if (kind == 10) text += "\xef\xb8\x8f";
      if (kind == 11) text += utf8_of_astral(0x1f3fb + random() % 5) + "\xe2\x80\x8d";
      if (kind == 12) text += random() % 2 == 0 ? "/" : "//ok";
    }
    std::vector<TokenId> ids;
    encoding.encode(text, ids);
    ASSERT_EQ(ids, test::naive_encode<Scanner>(vocab, text)) << text;
  }
}

TEST(EmojiTextTest, TextOfEmojiEncodesToTheNaiveMergesIds) {
  expect_emoji_text_matches_naive<Cl100kScanner>(EncodingId::cl100k_base);
  expect_emoji_text_matches_naive<O200kScanner>(EncodingId::o200k_base);
}

INSTANTIATE_TEST_SUITE_P(Encodings, EmojiPieceTableTest, testing::Values(EncodingId::cl100k_base, EncodingId::o200k_base),
                         [](const testing::TestParamInfo<EncodingId>& param) { return std::string(encoding_name(param.param)); });

}  // namespace
