// DigitGroupTable: groups of two or three ASCII digits answered from a table must be
// exactly the vocabulary's tokens, anything else must be declined, and a vocabulary
// without some group must send that group the general way. Through Encoding, digit runs
// mixed with non-ASCII digits and letters must give the naive merge's ids.
#include "naive_bpe.hpp"
#include "tiktoken_text.hpp"
#include "tokenizer/digit_groups.hpp"
#include "tokenizer/embedded_vocabularies.hpp"
#include "tokenizer/pretokenizer.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/vocabulary.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace {

using namespace turnout::tokenizer;

const Vocabulary& vocabulary(EncodingId id) {
  static const Vocabulary cl100k = Vocabulary::from_tiktoken(embedded_cl100k_base_tiktoken()).value();
  static const Vocabulary o200k = Vocabulary::from_tiktoken(embedded_o200k_base_tiktoken()).value();
  return id == EncodingId::cl100k_base ? cl100k : o200k;
}

class DigitGroupTableTest : public ::testing::TestWithParam<EncodingId> {};

TEST_P(DigitGroupTableTest, EveryGroupIsTheVocabularysToken) {
  const Vocabulary& vocab = vocabulary(GetParam());
  const DigitGroupTable table(vocab);
  for (unsigned value = 0; value < 1000; ++value) {
    for (const std::size_t width : {std::size_t{2}, std::size_t{3}}) {
      if (width == 2 && value >= 100) continue;
      std::string group = std::to_string(value);
      group.insert(0, width - group.size(), '0');
      const TokenId token = table.token_of(group.data(), group.size());
      EXPECT_EQ(token, vocab.rank_of(group)) << group;
      EXPECT_NE(token, kNoToken) << group;  // true of both OpenAI vocabularies
    }
  }
}

TEST_P(DigitGroupTableTest, DeclinesWhatIsNotTwoOrThreeAsciiDigits) {
  const DigitGroupTable table(vocabulary(GetParam()));
  for (const std::string piece : {"7", "1234", "1a", "a1", "12a", "1a2", "/1", "1:", "1\xc2\xb2", "\xd9\xa1\xd9"}) {
    EXPECT_EQ(table.token_of(piece.data(), piece.size()), kNoToken) << piece;
  }
}

INSTANTIATE_TEST_SUITE_P(Encodings, DigitGroupTableTest,
                         ::testing::Values(EncodingId::cl100k_base, EncodingId::o200k_base));

// A vocabulary with only some groups: the others are not tokens, and the table says so.
TEST(DigitGroupTableSyntheticTest, AGroupThatIsNotATokenIsDeclined) {
  const Vocabulary vocab = Vocabulary::from_tiktoken(test::tiktoken_text({"12", "123"})).value();
  const DigitGroupTable table(vocab);
  EXPECT_EQ(table.token_of("12", 2), 256u);
  EXPECT_EQ(table.token_of("123", 3), 257u);
  EXPECT_EQ(table.token_of("13", 2), kNoToken);
  EXPECT_EQ(table.token_of("124", 3), kNoToken);
}

template <class Scanner>
void expect_digit_text_matches_naive(EncodingId id) {
  const Encoding& encoding = Encoding::get(id);
  std::mt19937 random(22);
  // ASCII digits, an Arabic-Indic digit (a \p{N} that is not ASCII), superscript two (No),
  // letters, a space, a comma: groups of every width, cut and joined every way.
  const std::vector<std::string> alphabet = {"0", "1", "5", "9", "7", "\xd9\xa3", "\xc2\xb2", "a", " ", ",", "\xe4\xb8\x80"};
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    const int length = 1 + static_cast<int>(random() % 12);
    for (int i = 0; i < length; ++i) {
      // Mostly digits, so most pieces are digit groups.
      text += random() % 4 != 0 ? alphabet[random() % 5] : alphabet[random() % alphabet.size()];
    }
    std::vector<TokenId> ids;
    Encoding::clear_thread_caches();
    encoding.encode(text, ids);
    ASSERT_EQ(ids, test::naive_encode<Scanner>(vocabulary(id), text)) << text;
  }
}

TEST(DigitGroupEncodingTest, DigitRunsGiveTheNaiveMergesIds) {
  expect_digit_text_matches_naive<Cl100kScanner>(EncodingId::cl100k_base);
  expect_digit_text_matches_naive<O200kScanner>(EncodingId::o200k_base);
}

}  // namespace
