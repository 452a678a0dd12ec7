// RepetitionMerger: long repetitive pieces merged on their repetitions (a unit repeated, or
// a few runs of one byte) must give exactly what tiktoken's pair-by-pair rule gives. The
// reference is the naive merge (tests/support/naive_bpe.hpp), run on the same pieces,
// which are built to reach every kind of step: pairs inside a unit, pairs across two
// repetitions, runs of one token halving, pairs across segments, and units whose merges
// cannot be done in every repetition at once.
#include "naive_bpe.hpp"
#include "tiktoken_text.hpp"
#include "tokenizer/bpe.hpp"
#include "tokenizer/embedded_vocabularies.hpp"
#include "tokenizer/repetition_merge.hpp"
#include "tokenizer/vocabulary.hpp"

#include <gtest/gtest.h>

#include <optional>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace {

using namespace turnout::tokenizer;

const Vocabulary& vocabulary(EncodingId id) {
  static const Vocabulary cl100k = Vocabulary::from_tiktoken(embedded_cl100k_base_tiktoken()).value();
  static const Vocabulary o200k = Vocabulary::from_tiktoken(embedded_o200k_base_tiktoken()).value();
  return id == EncodingId::cl100k_base ? cl100k : o200k;
}

// Byte sources for units: letters, whitespace, punctuation and digits that merge into
// long tokens, the bytes of multi-byte characters, and any byte at all.
const std::string kAlphabets[] = {
    "aabehnst",
    " \t\n\r",
    "=-*#/!.",
    "0123456789",
    "\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80",  // é, 日, 😀
    "ab =\n",
};

std::string random_unit(std::mt19937& random, std::size_t max_length) {
  const std::string& alphabet = kAlphabets[random() % std::size(kAlphabets)];
  std::string unit(1 + random() % max_length, '\0');
  const bool any_byte = random() % 8 == 0;
  for (char& c : unit) c = any_byte ? static_cast<char>(random() % 256) : alphabet[random() % alphabet.size()];
  return unit;
}

// A unit repeated to between 65 and ~400 bytes (past the short-piece limit), with a partial
// last repetition.
std::string periodic_piece(std::mt19937& random) {
  const std::string unit = random_unit(random, RepetitionMerger::kMaxPeriod);
  const std::size_t length = BytePairMerger::kShortPieceLimit + 1 + random() % 340;
  std::string piece;
  while (piece.size() < length) piece += unit;
  piece.resize(length);
  return piece;
}

// Two to kMaxRuns runs of one byte each, 65 bytes or more in all.
std::string runs_piece(std::mt19937& random) {
  const std::string alphabet = random_unit(random, 4);
  const std::size_t runs = 2 + random() % (RepetitionMerger::kMaxRuns - 1);
  std::string piece;
  while (piece.size() <= BytePairMerger::kShortPieceLimit) {
    piece.clear();
    for (std::size_t run = 0; run < runs; ++run) {
      piece.append(1 + random() % (random() % 4 == 0 ? 200 : 12), alphabet[random() % alphabet.size()]);
    }
  }
  return piece;
}

std::vector<TokenId> merged(const Vocabulary& vocab, const std::string& piece) {
  const BytePairMerger merger(vocab);
  MergeScratch scratch;
  std::vector<TokenId> tokens;
  merger.merge_piece(piece.data(), piece.size(), [&](TokenId token) { tokens.push_back(token); }, scratch);
  return tokens;
}

std::vector<TokenId> naive(const Vocabulary& vocab, const std::string& piece) {
  std::vector<TokenId> tokens;
  test::naive_merge(vocab, piece, tokens);
  return tokens;
}

// The tokens segments stand for: each block, `count` times, in order.
std::vector<TokenId> tokens_of(const std::vector<RepeatedBlock>& segments) {
  std::vector<TokenId> tokens;
  for (const RepeatedBlock& segment : segments) {
    for (std::uint64_t i = 0; i < segment.count; ++i) tokens.insert(tokens.end(), segment.block.begin(), segment.block.end());
  }
  return tokens;
}

// The tokens RepetitionMerger makes of `piece` directly (no fallback), if it takes it.
std::optional<std::vector<TokenId>> merged_on_repetitions(const Vocabulary& vocab, const std::string& piece) {
  const RepetitionMerger merger(vocab);
  std::vector<RepeatedBlock> segments;
  std::string joined;
  if (!merger.split(piece.data(), piece.size(), segments) || !merger.merge(segments, joined)) return std::nullopt;
  return tokens_of(segments);
}

std::string printable(const std::string& piece) {
  std::string out;
  for (const char c : piece.substr(0, 40)) {
    out += c >= 0x20 && c < 0x7f ? std::string(1, c) : "\\x" + std::to_string(static_cast<unsigned char>(c));
  }
  return out + (piece.size() > 40 ? "..." : "") + " (" + std::to_string(piece.size()) + " bytes)";
}

class RepetitionMergeTest : public testing::TestWithParam<EncodingId> {};

// 300 pieces from make_piece(random), each one split() takes, merged as the naive merge does.
void expect_random_pieces_merge_as_naive(EncodingId id, std::uint32_t seed, std::string (*make_piece)(std::mt19937&)) {
  const Vocabulary& vocab = vocabulary(id);
  const RepetitionMerger splitter(vocab);
  std::vector<RepeatedBlock> segments;
  std::mt19937 random(seed);
  for (int i = 0; i < 300; ++i) {
    const std::string piece = make_piece(random);
    ASSERT_TRUE(splitter.split(piece.data(), piece.size(), segments)) << printable(piece);
    EXPECT_EQ(merged(vocab, piece), naive(vocab, piece)) << printable(piece);
  }
}

TEST_P(RepetitionMergeTest, RepeatedUnitsMergeAsTheNaiveMergeDoes) {
  expect_random_pieces_merge_as_naive(GetParam(), 20261127, periodic_piece);
}

TEST_P(RepetitionMergeTest, FewRunsOfOneByteMergeAsTheNaiveMergeDoes) {
  expect_random_pieces_merge_as_naive(GetParam(), 1127, runs_piece);
}

// Text seen in real prompts: rules, CRLF runs, indentation, repeated words and emoji.
TEST_P(RepetitionMergeTest, FamiliarRepetitionsMergeAsTheNaiveMergeDoes) {
  const Vocabulary& vocab = vocabulary(GetParam());
  const char* const units[] = {"=", "-=", "\r\n", "    ", "\t", "ha", "na ", "\xf0\x9f\x98\x80", "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd",
                               "ab", "abc", "0", "01", ". ", "\xe2\x80\x94", "*/", "xyzzy", "lol"};
  for (const char* unit : units) {
    for (const std::size_t length : {65u, 66u, 67u, 128u, 130u, 255u, 400u}) {
      std::string piece;
      while (piece.size() < length) piece += unit;
      piece.resize(length);
      EXPECT_EQ(merged(vocab, piece), naive(vocab, piece)) << printable(piece);
    }
  }
  for (const std::string& piece : {std::string(100, '=') + std::string(100, '-') + std::string(100, '='),
                                   std::string(70, ' ') + "\n" + std::string(70, ' '),
                                   std::string(1, 'x') + std::string(200, 'a') + "b", std::string(99, '!') + "?"}) {
    EXPECT_EQ(merged(vocab, piece), naive(vocab, piece)) << printable(piece);
  }
}

INSTANTIATE_TEST_SUITE_P(Encodings, RepetitionMergeTest,
                         testing::Values(EncodingId::cl100k_base, EncodingId::o200k_base),
                         [](const testing::TestParamInfo<EncodingId>& param_info) {
                           return std::string(encoding_name(param_info.param));
                         });

// OpenAI's vocabularies rank a token after the tokens it is built from, so in them a run or
// a unit nearly always merges in every repetition at once. Small vocabularies over three
// letters, ranked at random, also reach the steps that cannot: a merge whose result joins a
// neighbour at a lower rank, pairs that tie across repetitions, segments that multiply.
TEST(RepetitionMerger, RandomlyRankedVocabulariesMergeAsTheNaiveMergeDoes) {
  std::mt19937 random(42);
  std::size_t taken = 0;
  std::size_t pieces = 0;
  for (int vocabulary_number = 0; vocabulary_number < 800; ++vocabulary_number) {
    // Two or three letters, tokens of two to six: small enough that most pairs are tokens.
    const std::string letters = vocabulary_number % 2 == 0 ? "ab" : "ab=";
    std::set<std::string> chosen;
    while (chosen.size() < (letters.size() == 2 ? 50u : 150u)) {
      std::string token(2 + random() % 5, '\0');
      for (char& c : token) c = letters[random() % letters.size()];
      chosen.insert(token);
    }
    std::vector<std::string> tokens(chosen.begin(), chosen.end());
    std::shuffle(tokens.begin(), tokens.end(), random);
    const Vocabulary vocab = Vocabulary::from_tiktoken(test::tiktoken_text(tokens)).value();
    for (int i = 0; i < 40; ++i) {
      std::string unit(1 + random() % RepetitionMerger::kMaxPeriod, '\0');
      for (char& c : unit) c = letters[random() % letters.size()];
      std::string piece;
      if (i % 2 == 0) {
        while (piece.size() < 65 + random() % 200) piece += unit;
      } else {
        while (piece.size() < 65) piece.append(1 + random() % 40, unit[random() % unit.size()]);
      }
      ++pieces;
      const std::vector<TokenId> expected = naive(vocab, piece);
      if (const auto repetition_tokens = merged_on_repetitions(vocab, piece)) {
        ++taken;
        EXPECT_EQ(*repetition_tokens, expected) << printable(piece) << " in vocabulary " << vocabulary_number;
      }
      EXPECT_EQ(merged(vocab, piece), expected) << printable(piece) << " in vocabulary " << vocabulary_number;
    }
  }
  EXPECT_GT(taken, pieces / 2);  // most pieces are merged on their repetitions, not handed back
}

// Segments as merging leaves them can have a neighbour before a repeated block; a block
// pair merged there may join that neighbour first. Vocabulary: "xab" < "xaba" < "ab", so
// "x" + "ab"x3 is [xaba, b, ab] (tiktoken merges "ab", then "xab", then "xaba"), not the
// [xab, ab, ab] that merging "ab" in every repetition first would give.
TEST(RepetitionMerger, ABlockPairThatJoinsThePreviousSegmentFirstIsMergedOnce) {
  const Vocabulary vocab = Vocabulary::from_tiktoken(test::tiktoken_text({"xab", "xaba", "ab"})).value();
  const RepetitionMerger merger(vocab);
  const TokenId x = vocab.rank_of_byte('x');
  const TokenId a = vocab.rank_of_byte('a');
  const TokenId b = vocab.rank_of_byte('b');
  std::vector<RepeatedBlock> segments = {RepeatedBlock{{x}, 1}, RepeatedBlock{{a, b}, 3}};
  std::string joined;
  ASSERT_TRUE(merger.merge(segments, joined));
  const std::vector<TokenId> tokens = tokens_of(segments);
  EXPECT_EQ(tokens, naive(vocab, "xababab"));
  EXPECT_EQ(tokens, (std::vector<TokenId>{vocab.rank_of("xaba"), b, vocab.rank_of("ab")}));
}

TEST(RepetitionMerger, SplitsAShortestUnitAndItsPartialLastRepetition) {
  const Vocabulary& vocab = vocabulary(EncodingId::cl100k_base);
  const RepetitionMerger splitter(vocab);
  std::vector<RepeatedBlock> segments;
  ASSERT_TRUE(splitter.split(std::string(100, 'a').data(), 100, segments));
  ASSERT_EQ(segments.size(), 1u);
  EXPECT_EQ(segments[0].block, std::vector<TokenId>{vocab.rank_of_byte('a')});
  EXPECT_EQ(segments[0].count, 100u);

  std::string piece;
  for (int i = 0; i < 30; ++i) piece += "abab";  // period 2, not 4
  piece += "a";
  ASSERT_TRUE(splitter.split(piece.data(), piece.size(), segments));
  ASSERT_EQ(segments.size(), 2u);
  EXPECT_EQ(segments[0].block, (std::vector<TokenId>{vocab.rank_of_byte('a'), vocab.rank_of_byte('b')}));
  EXPECT_EQ(segments[0].count, 60u);
  EXPECT_EQ(segments[1].block, std::vector<TokenId>{vocab.rank_of_byte('a')});
  EXPECT_EQ(segments[1].count, 1u);
}

TEST(RepetitionMerger, SplitsFewRunsAndRefusesOtherText) {
  const Vocabulary& vocab = vocabulary(EncodingId::cl100k_base);
  const RepetitionMerger splitter(vocab);
  std::vector<RepeatedBlock> segments;
  const std::string runs = std::string(40, '=') + std::string(30, '-') + std::string(40, '=');
  ASSERT_TRUE(splitter.split(runs.data(), runs.size(), segments));
  ASSERT_EQ(segments.size(), 3u);
  EXPECT_EQ(segments[1].block, std::vector<TokenId>{vocab.rank_of_byte('-')});
  EXPECT_EQ(segments[1].count, 30u);

  std::string too_many_runs;
  for (std::size_t run = 0; run <= RepetitionMerger::kMaxRuns; ++run) too_many_runs.append(5, run % 2 ? 'a' : 'b');
  too_many_runs += "c";
  EXPECT_FALSE(splitter.split(too_many_runs.data(), too_many_runs.size(), segments));
  const std::string prose = "Routing by prompt length is only as good as the count that feeds it.";
  EXPECT_FALSE(splitter.split(prose.data(), prose.size(), segments));
  const std::string long_unit = "0123456789" "0123456789" "0123456789" "0123456789";  // period 10 > kMaxPeriod
  EXPECT_FALSE(splitter.split(long_unit.data(), long_unit.size(), segments));
}

}  // namespace
