// CharacterMerger: pieces with non-ASCII characters merged one character at a time must
// give exactly what tiktoken's byte-by-byte rule gives. The reference is the naive merge
// (tests/support/naive_bpe.hpp) on the same pieces, drawn at random from characters that
// reach every case: characters that are one token and ones that stay 2-3 tokens,
// boundaries where a token joins part of a character to its neighbour (" \xe5": a space
// and the first byte of a CJK character; "\xd0\xbe\xd0" in Cyrillic), characters that
// rank above a token containing them, characters beyond U+FFFF, and ASCII around them;
// pairs of characters no token holds, where the piece is cut, and pairs held only inside
// longer tokens, where it must not be.
#include "naive_bpe.hpp"
#include "tiktoken_text.hpp"
#include "tokenizer/bpe.hpp"
#include "tokenizer/character_merge.hpp"
#include "tokenizer/character_table.hpp"
#include "tokenizer/embedded_vocabularies.hpp"
#include "tokenizer/vocabulary.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace turnout::tokenizer;

struct Fixture {
  Vocabulary vocab;
  CharacterTable table;
  explicit Fixture(std::string_view tiktoken) : vocab(Vocabulary::from_tiktoken(tiktoken).value()), table(vocab) {}
};

const Fixture& fixture(EncodingId id) {
  static const Fixture cl100k(embedded_cl100k_base_tiktoken());
  static const Fixture o200k(embedded_o200k_base_tiktoken());
  return id == EncodingId::cl100k_base ? cl100k : o200k;
}

std::string utf8_of(char32_t code_point) {
  std::string out;
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xc0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3f));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xe0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (code_point & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (code_point & 0x3f));
  }
  return out;
}

// Ranges of code points a piece's characters are drawn from.
struct Range {
  char32_t first;
  char32_t last;
};
const std::vector<Range> kScripts[] = {
    {{0x4e00, 0x4fff}, {0x3040, 0x30ff}, {0x3000, 0x3003}, {0xff01, 0xff0f}},  // CJK, kana, punctuation
    {{0xac00, 0xad00}, {0xc5c6, 0xc5c6}},                                      // Hangul (없)
    {{0x0400, 0x045f}},                                                        // Cyrillic
    {{0x0900, 0x097f}, {0x10a0, 0x10ff}, {0x0e00, 0x0e7f}},                    // Devanagari, Georgian, Thai
    {{0x0590, 0x06ff}},                                                        // Hebrew, Arabic
    {{0x00c0, 0x024f}, {'a', 'z'}},                                            // Latin with accents
    {{0x1f600, 0x1f64f}, {0x2600, 0x26ff}},                                    // emoji, symbols
    {{0xfffd, 0xfffd}, {0x2000, 0x206f}},                                      // U+FFFD, general punctuation
    {{0x0080, 0xffff}},                                                        // anything in the table
};

std::string random_piece(std::mt19937& random) {
  const std::vector<Range>& script = kScripts[random() % std::size(kScripts)];
  const std::size_t characters = 2 + random() % 40;
  std::string piece;
  if (random() % 3 == 0) piece += " ,.'\n"[random() % 5];  // a prefix, as the pre-tokenizer leaves one
  while (piece.size() < characters * 2) {
    const Range range = random() % 16 == 0 ? Range{' ', '~'} : script[random() % script.size()];
    char32_t code_point = range.first + random() % (range.last - range.first + 1);
    if (code_point >= 0xd800 && code_point < 0xe000) code_point = 0x4e2d;  // no surrogates in UTF-8
    piece += utf8_of(code_point);
  }
  return piece;
}

std::vector<TokenId> naive(const Vocabulary& vocab, const std::string& piece) {
  std::vector<TokenId> tokens;
  test::naive_merge(vocab, piece, tokens);
  return tokens;
}

std::string hex(const std::string& piece) {
  std::string out;
  for (const char c : piece) {
    char buffer[4];
    std::snprintf(buffer, sizeof buffer, "%02x ", static_cast<unsigned char>(c));
    out += buffer;
  }
  return out;
}

class CharacterMergeTest : public testing::TestWithParam<EncodingId> {};

TEST_P(CharacterMergeTest, RandomNonAsciiPiecesMergeAsTheNaiveMerge) {
  const Fixture& f = fixture(GetParam());
  const CharacterMerger merger(f.vocab, f.table);
  std::mt19937 random(20261206);
  int taken = 0;
  constexpr int kPieces = 20000;
  for (int round = 0; round < kPieces; ++round) {
    const std::string piece = random_piece(random);
    std::vector<TokenId> tokens;
    auto sink = [&](TokenId token) { tokens.push_back(token); };
    if (!merger.merge_piece(piece.data(), piece.size(), sink)) {
      ASSERT_TRUE(tokens.empty()) << hex(piece);  // declined before emitting anything
      continue;
    }
    ++taken;
    ASSERT_EQ(tokens, naive(f.vocab, piece)) << hex(piece);
  }
  EXPECT_GT(taken, kPieces / 2);  // the test reaches the character merge, not only its refusals
}

// The same pieces through the whole merge (BytePairMerger), so that the pieces the character
// merge declines (emoji, ragged scripts) take the short-piece scan of non-ASCII pieces, whose
// joined pairs skip the lookup at seams no token has (Vocabulary::rank_of_joined).
TEST_P(CharacterMergeTest, RandomNonAsciiPiecesThroughTheWholeMergeMatchTheNaiveMerge) {
  const Fixture& f = fixture(GetParam());
  const BytePairMerger merger(f.vocab, &f.table);
  MergeScratch scratch;
  std::mt19937 random(20261207);
  for (int round = 0; round < 20000; ++round) {
    const std::string piece = random_piece(random);
    std::vector<TokenId> tokens;
    merger.merge_piece(piece.data(), piece.size(), [&](TokenId token) { tokens.push_back(token); }, scratch);
    ASSERT_EQ(tokens, naive(f.vocab, piece)) << hex(piece);
  }
}

// Pieces where joining whole characters would be wrong: a token joins a space, or a
// whole character, to the first bytes of the next one.
TEST_P(CharacterMergeTest, BoundariesWithRaggedTokensMergeAsTheNaiveMerge) {
  const Fixture& f = fixture(GetParam());
  const BytePairMerger merger(f.vocab, &f.table);
  MergeScratch scratch;
  for (const char* text : {" 없다", " 没有的", " 中文字", "ージャ", "如果你", "обработка", " سلام علی",
                            "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", " 😀中", "中😀文", "彩祥"}) {
    const std::string piece(text);
    std::vector<TokenId> tokens;
    merger.merge_piece(piece.data(), piece.size(), [&](TokenId token) { tokens.push_back(token); }, scratch);
    EXPECT_EQ(tokens, naive(f.vocab, piece)) << piece;
  }
}

// The flags that make those boundaries merge as bytes.
TEST(CharacterTableTest, FlagsTheBoundaryOfASpaceAndACjkCharacter) {
  const Fixture& f = fixture(EncodingId::cl100k_base);
  ASSERT_NE(f.vocab.rank_of(" \xe5"), kNoToken);  // a space and the first byte of U+5xxx
  const std::uint32_t space = f.table.entry(' ');
  const std::uint32_t cjk = f.table.entry(0x5b57);  // 字, UTF-8 e5 ad 97
  EXPECT_TRUE(CharacterTable::boundary_may_be_ragged(space, cjk));
  EXPECT_FALSE(CharacterTable::boundary_may_be_ragged(cjk, f.table.entry(0x6587)));  // 字文
}

// A vocabulary (not OpenAI's) where a token containing "é" ranks below "é" itself: "xy"
// then merges before "é" exists, which keeps "yé" from forming, so "é" must not be taken
// as one part from the start. The table merges it as bytes.
TEST(CharacterTableTest, ACharacterRankedAboveATokenContainingItIsMergedAsBytes) {
  const Vocabulary vocab = Vocabulary::from_tiktoken(test::tiktoken_text({"y\xc3\xa9", "xy", "\xc3\xa9"})).value();
  const CharacterTable table(vocab);
  EXPECT_NE(table.entry(0xe9) & CharacterTable::kUnsupported, 0u);
  const BytePairMerger merger(vocab, &table);
  MergeScratch scratch;
  const std::string piece = "xy\xc3\xa9";
  std::vector<TokenId> tokens;
  merger.merge_piece(piece.data(), piece.size(), [&](TokenId token) { tokens.push_back(token); }, scratch);
  EXPECT_EQ(tokens, naive(vocab, piece));  // [xy][é], not [x][yé]
  EXPECT_EQ(tokens, (std::vector<TokenId>{257, 258}));
}

// Every pair of whole characters side by side in a token, read as text, is a bigram the
// table may report: a pair it denied would cut a piece where a token can still join the
// two characters.
TEST_P(CharacterMergeTest, EveryPairOfWholeCharactersInATokenMayOccur) {
  const Fixture& f = fixture(GetParam());
  std::size_t pairs = 0;
  for (TokenId rank = 0; rank < f.vocab.size(); ++rank) {
    const std::string_view token = f.vocab.bytes_of(rank);
    char32_t previous = 0x110000;  // none
    for (std::size_t i = 0; i < token.size();) {
      const auto lead = static_cast<unsigned char>(token[i]);
      const std::size_t length = lead < 0x80 ? 1 : lead >= 0xc2 && lead < 0xe0 ? 2 : lead >= 0xe0 && lead < 0xf0 ? 3 : lead >= 0xf0 && lead < 0xf5 ? 4 : 0;
      bool whole = length != 0 && i + length <= token.size();
      for (std::size_t j = 1; whole && j < length; ++j) whole = (static_cast<unsigned char>(token[i + j]) & 0xc0) == 0x80;
      if (!whole) {  // a part of a character: what follows does not touch `previous`
        previous = 0x110000;
        ++i;
        continue;
      }
      char32_t code_point = length == 1 ? lead : lead & (0x7fu >> length);
      for (std::size_t j = 1; j < length; ++j) code_point = (code_point << 6) | (static_cast<unsigned char>(token[i + j]) & 0x3fu);
      if (previous < 0x10000 && code_point < 0x10000 && (previous | code_point) >= 0x80) {
        ++pairs;
        ASSERT_TRUE(f.table.bigram_may_occur(previous, code_point)) << "token " << rank << ": " << hex(std::string(token));
      }
      previous = code_point;
      i += length;
    }
  }
  EXPECT_GT(pairs, 1000u);
}

// The table is of use only if it denies most pairs no token holds: pairs of the first
// 100 CJK ideographs in cl100k_base, which has few tokens of two of them.
TEST(CharacterTableTest, DeniesMostCjkPairsOfCl100k) {
  const Fixture& f = fixture(EncodingId::cl100k_base);
  int denied = 0;
  for (char32_t left = 0x4e00; left < 0x4e64; ++left) {
    for (char32_t right = 0x4e00; right < 0x4e64; ++right) denied += f.table.bigram_may_occur(left, right) ? 0 : 1;
  }
  EXPECT_GT(denied, 8000);  // of 10,000
}

// A vocabulary (not OpenAI's) where "éñ" is held by a token only inside a longer one,
// "xéñ": the piece "xéñ" must not be cut between "é" and "ñ", since [xé] and [ñ] merge
// later. A table built from two-character tokens only (or a cut at every pair no
// token is) would give [xé][ñ].
TEST(CharacterTableTest, APairHeldOnlyInsideALongerTokenIsNotCut) {
  const Vocabulary vocab =
      Vocabulary::from_tiktoken(test::tiktoken_text({"\xc3\xa9", "\xc3\xb1", "x\xc3\xa9", "x\xc3\xa9\xc3\xb1"})).value();
  const CharacterTable table(vocab);
  EXPECT_TRUE(table.bigram_may_occur(0xe9, 0xf1));
  const CharacterMerger merger(vocab, table);
  const std::string piece = "x\xc3\xa9\xc3\xb1";
  std::vector<TokenId> tokens;
  auto sink = [&](TokenId token) { tokens.push_back(token); };
  ASSERT_TRUE(merger.merge_piece(piece.data(), piece.size(), sink));
  EXPECT_EQ(tokens, naive(vocab, piece));
  EXPECT_EQ(tokens, (std::vector<TokenId>{259}));
}

// And one where no token holds "éñ": the piece is cut there, and each side merges alone.
TEST(CharacterTableTest, APairNoTokenHoldsCutsThePiece) {
  const Vocabulary vocab =
      Vocabulary::from_tiktoken(test::tiktoken_text({"\xc3\xa9", "\xc3\xb1", "x\xc3\xa9", "\xc3\xb1y"})).value();
  const CharacterTable table(vocab);
  const CharacterMerger merger(vocab, table);
  const std::string piece = "x\xc3\xa9\xc3\xb1y";
  std::vector<TokenId> tokens;
  auto sink = [&](TokenId token) { tokens.push_back(token); };
  ASSERT_TRUE(merger.merge_piece(piece.data(), piece.size(), sink));
  EXPECT_EQ(tokens, naive(vocab, piece));
  EXPECT_EQ(tokens, (std::vector<TokenId>{258, 259}));
}

// And one where "éñ" occurs only inside a ragged token, "\xa9xéñ" (it starts mid-character):
// the pair must be recorded from such tokens too. Here "é" goes in as one part, so [é] +
// [\xa9xé] is no merge the run makes, but the byte merge can still join [\xa9xé][ñ] — a
// table built from clean tokens only would cut between "é" and "ñ" and give [\xc3][\xa9xé][ñ].
// (OpenAI's vocabularies hold every such pair in a clean token too, so only this can fail.)
TEST(CharacterTableTest, APairHeldOnlyInsideARaggedTokenIsNotCut) {
  const Vocabulary vocab = Vocabulary::from_tiktoken(test::tiktoken_text(
      {"\xa9x", "\xc3\xa9", "\xc3\xb1", "\xa9x\xc3\xa9", "\xa9x\xc3\xa9\xc3\xb1"})).value();
  const CharacterTable table(vocab);
  EXPECT_TRUE(table.bigram_may_occur(0xe9, 0xf1));
  const CharacterMerger merger(vocab, table);
  const std::string piece = "\xc3\xa9x\xc3\xa9\xc3\xb1";
  std::vector<TokenId> tokens;
  auto sink = [&](TokenId token) { tokens.push_back(token); };
  ASSERT_TRUE(merger.merge_piece(piece.data(), piece.size(), sink));
  EXPECT_EQ(tokens, naive(vocab, piece));
  EXPECT_EQ(tokens, (std::vector<TokenId>{0xc3, 260}));
}

TEST(CharacterTableTest, AsciiIsItsOwnByte) {
  const Fixture& f = fixture(EncodingId::o200k_base);
  EXPECT_EQ(f.table.entry('a') & CharacterTable::kTokenMask, f.vocab.rank_of_byte('a'));
  EXPECT_EQ(f.table.entry('a') & (CharacterTable::kSplit | CharacterTable::kUnsupported), 0u);
}

TEST(CharacterMergeTest, PiecesWithTooManyCharactersAreLeftToTheByteMerge) {
  const Fixture& f = fixture(EncodingId::cl100k_base);
  const CharacterMerger merger(f.vocab, f.table);
  std::string piece;
  for (std::size_t i = 0; i <= CharacterMerger::kMaxCharacters; ++i) piece += "\xe4\xb8\xad";  // 中
  std::size_t calls = 0;
  auto sink = [&](TokenId) { ++calls; };
  EXPECT_FALSE(merger.merge_piece(piece.data(), piece.size(), sink));
  EXPECT_EQ(calls, 0u);
}

INSTANTIATE_TEST_SUITE_P(Encodings, CharacterMergeTest, testing::Values(EncodingId::cl100k_base, EncodingId::o200k_base));

}  // namespace
