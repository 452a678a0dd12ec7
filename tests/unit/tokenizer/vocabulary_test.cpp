// Vocabulary: reading .tiktoken text and finding tokens by their bytes. The index packs
// each token's first 8 bytes and a length code into a bucket slot, keeps bytes 8-15 by
// slot beside it and compares the rest in the byte arena, so the cases that matter are
// tokens that agree on their first 8 or 16 bytes, tokens longer than the length code
// holds (255 bytes and more), prefixes and extensions of tokens, and buckets that
// overflow into the next ones.
#include "naive_bpe.hpp"
#include "tiktoken_text.hpp"
#include "tokenizer/embedded_vocabularies.hpp"
#include "tokenizer/vocabulary.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace {

using turnout::tokenizer::kNoToken;
using turnout::tokenizer::TokenId;
using turnout::tokenizer::Vocabulary;
using turnout::tokenizer::test::tiktoken_text;

// Tokens chosen to stress the index: shared 8- and 16-byte heads with different lengths
// and tails, lengths around the limits of the two heads (8, 16) and of the length code
// (255), and a few thousand random ones so that buckets fill and overflow.
std::vector<std::string> tricky_tokens() {
  std::vector<std::string> tokens = {"ab", "abc", "abcdefg", "abcdefgh", "abcdefghi", "abcdefghij", "abcdefghik",
                                     std::string("abcdefgh\0", 9), std::string("ab\0\0", 4), std::string("\0\0", 2),
                                     "abcdefghijklmno", "abcdefghijklmnop", "abcdefghijklmnoq", "abcdefghijklmnopq",
                                     "abcdefghijklmnopr", "abcdefghXjklmnopq", "abcdefghijklmnopqrstuvwxy",
                                     std::string("abcdefgh\0\0\0\0\0\0\0\0q", 17),
                                     std::string(254, 'x'), std::string(255, 'x'), std::string(256, 'x'),
                                     std::string(300, 'x'), std::string(255, 'x') + "y"};
  std::mt19937_64 random(7);
  std::set<std::string> seen(tokens.begin(), tokens.end());
  while (tokens.size() < 5000) {
    std::string token(2 + random() % 22, '\0');
    for (char& c : token) c = static_cast<char>("abcdefgh \xc3\xa9"[random() % 11]);
    if (seen.insert(token).second) tokens.push_back(token);
  }
  return tokens;
}

TEST(Vocabulary, FindsEveryTokenByItsBytesAndRanksInFileOrder) {
  const std::vector<std::string> tokens = tricky_tokens();
  const Vocabulary vocab = Vocabulary::from_tiktoken(tiktoken_text(tokens)).value();
  ASSERT_EQ(vocab.size(), 256 + tokens.size());
  for (int byte = 0; byte < 256; ++byte) {
    EXPECT_EQ(vocab.rank_of(std::string(1, static_cast<char>(byte))), static_cast<TokenId>(byte));
    EXPECT_EQ(vocab.rank_of_byte(static_cast<unsigned char>(byte)), static_cast<TokenId>(byte));
  }
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const auto rank = static_cast<TokenId>(256 + i);
    EXPECT_EQ(vocab.rank_of(tokens[i]), rank) << "token " << i << " (" << tokens[i].size() << " bytes)";
    EXPECT_EQ(vocab.bytes_of(rank), tokens[i]);
  }
  EXPECT_EQ(vocab.rank_of_byte_pair('a', 'b'), 256u);
  EXPECT_EQ(vocab.rank_of_byte_pair('z', 'z'), kNoToken);  // not in the random tokens' alphabet
}

TEST(Vocabulary, BytesThatAreNoTokenAreNotFound) {
  const std::vector<std::string> tokens = tricky_tokens();
  const Vocabulary vocab = Vocabulary::from_tiktoken(tiktoken_text(tokens)).value();
  const std::set<std::string> known(tokens.begin(), tokens.end());
  // Prefixes, extensions and one-byte changes of every token: same heads, other lengths
  // or tails, and (for the long ones) lengths the length code cannot tell apart.
  std::size_t checked = 0;
  for (const std::string& token : tokens) {
    std::vector<std::string> near = {token.substr(0, token.size() - 1) + "z", token + "a", token + "x",
                                     "z" + token.substr(1)};
    if (token.size() > 2) near.push_back(token.substr(0, token.size() - 1));
    for (const std::string& other : near) {
      if (known.count(other) != 0 || other.size() <= 1) continue;
      EXPECT_EQ(vocab.rank_of(other), kNoToken) << "\"" << other.substr(0, 20) << "\" (" << other.size() << " bytes)";
      ++checked;
    }
  }
  EXPECT_GT(checked, 10000u);
  EXPECT_EQ(vocab.rank_of(std::string(257, 'x')), kNoToken);
  EXPECT_EQ(vocab.rank_of(std::string(255, 'x') + "z"), kNoToken);
  EXPECT_EQ(vocab.rank_of(""), kNoToken);
}

// The presence filter and the hash keep nearly every wrong string away from the slots, so
// the comparison inside a bucket is tested here with the token's own hash: a string of the
// same length that differs in any one byte (in the first head, the second or the tail)
// reaches that token's slot and must still not be taken for it.
TEST(Vocabulary, AStringDifferingInOneByteIsNotTheTokenInItsSlot) {
  const std::vector<std::string> tokens = tricky_tokens();
  const Vocabulary vocab = Vocabulary::from_tiktoken(tiktoken_text(tokens)).value();
  const std::set<std::string> known(tokens.begin(), tokens.end());
  std::size_t checked_by_region[3] = {0, 0, 0};  // byte 0-7, 8-15, 16 on
  for (std::size_t index = 0; index < tokens.size(); ++index) {
    const std::string& token = tokens[index];
    const std::uint64_t hash = turnout::tokenizer::hash_token_bytes(token.data(), token.size());
    ASSERT_EQ(vocab.rank_of(token.data(), token.size(), hash), static_cast<TokenId>(256 + index));
    for (std::size_t i = 0; i < token.size(); ++i) {
      std::string other = token;
      other[i] = static_cast<char>(other[i] ^ 0x40);
      if (known.count(other) != 0) continue;
      EXPECT_EQ(vocab.rank_of(other.data(), other.size(), hash), kNoToken)
          << "byte " << i << " of a " << token.size() << "-byte token";
      ++checked_by_region[std::min<std::size_t>(i / 8, 2)];
    }
  }
  EXPECT_GT(checked_by_region[0], 1000u);
  EXPECT_GT(checked_by_region[1], 1000u);
  EXPECT_GT(checked_by_region[2], 1000u);
}

// Tokens of 255 bytes and more share one length code, so for them only the full length
// check tells a longer or shorter string apart once both heads match: strings of other
// lengths sent to such a token's slot (with its hash) must not be taken for it.
TEST(Vocabulary, AStringOfAnotherLengthIsNotTheLongTokenInItsSlot) {
  const std::vector<std::string> tokens = tricky_tokens();
  const Vocabulary vocab = Vocabulary::from_tiktoken(tiktoken_text(tokens)).value();
  const std::set<std::string> known(tokens.begin(), tokens.end());
  std::size_t checked = 0;
  for (const std::string& token : tokens) {
    if (token.size() < 17) continue;
    const std::uint64_t hash = turnout::tokenizer::hash_token_bytes(token.data(), token.size());
    for (const std::string& other : {token + token.back(), token.substr(0, token.size() - 1), token + "x",
                                     std::string(token.size() + 1, 'x'), std::string(token.size() - 1, 'x')}) {
      if (known.count(other) != 0) continue;
      EXPECT_EQ(vocab.rank_of(other.data(), other.size(), hash), kNoToken)
          << other.size() << " bytes in the slot of a " << token.size() << "-byte token";
      ++checked;
    }
  }
  EXPECT_GT(checked, 20u);
}

TEST(Vocabulary, OpenAIsVocabulariesFindEachOfTheirTokens) {
  for (const std::string_view text : {turnout::tokenizer::embedded_cl100k_base_tiktoken(),
                                      turnout::tokenizer::embedded_o200k_base_tiktoken()}) {
    const Vocabulary vocab = Vocabulary::from_tiktoken(text).value();
    std::size_t wrong = 0;
    for (TokenId rank = 0; rank < vocab.size(); ++rank) {
      const std::string_view bytes = vocab.bytes_of(rank);
      wrong += vocab.rank_of(bytes.data(), bytes.size()) != rank;
    }
    EXPECT_EQ(wrong, 0u) << vocab.size() << " tokens";
  }
}

// The merges skip the lookup of two parts joined when the bytes at their seam occur in no
// token: every token of both vocabularies must be found through rank_of_joined at every
// seam, and a seam no token has (U+FFFD then '$': cl100k_base has no token with it) is
// answered without a lookup.
TEST(Vocabulary, EveryTokenIsFoundJoinedAtEverySeam) {
  for (const std::string_view text : {turnout::tokenizer::embedded_cl100k_base_tiktoken(),
                                      turnout::tokenizer::embedded_o200k_base_tiktoken()}) {
    const Vocabulary vocab = Vocabulary::from_tiktoken(text).value();
    std::size_t wrong = 0;
    for (TokenId rank = 0; rank < vocab.size(); ++rank) {
      const std::string_view bytes = vocab.bytes_of(rank);
      for (std::size_t middle = 1; middle < bytes.size(); ++middle) {
        wrong += vocab.rank_of_joined(bytes.data(), 0, middle, bytes.size()) != rank;
      }
    }
    EXPECT_EQ(wrong, 0u) << vocab.size() << " tokens";
  }
  const Vocabulary cl100k = Vocabulary::from_tiktoken(turnout::tokenizer::embedded_cl100k_base_tiktoken()).value();
  EXPECT_FALSE(cl100k.byte_pair_occurs_in_a_token(0xbd, '$'));
  EXPECT_TRUE(cl100k.byte_pair_occurs_in_a_token('t', 'h'));
}

// The ranks of tokens whose own bytes, merged by tiktoken's rule (the naive merge), give
// anything but that one token. The tokenizer answers a piece that is a whole token with
// that token without merging (bpe.hpp), and the emoji table hands the rest of a cut
// piece to that shortcut (emoji_table.hpp): both are exact only if this list is empty.
std::vector<TokenId> tokens_not_merging_to_themselves(const Vocabulary& vocab) {
  std::vector<TokenId> wrong;
  std::vector<TokenId> merged;
  for (TokenId rank = 0; rank < vocab.size(); ++rank) {
    merged.clear();
    turnout::tokenizer::test::naive_merge(vocab, vocab.bytes_of(rank), merged);
    if (merged.size() != 1 || merged[0] != rank) wrong.push_back(rank);
  }
  return wrong;
}

TEST(Vocabulary, EveryTokenMergesToItself) {
  for (const std::string_view text : {turnout::tokenizer::embedded_cl100k_base_tiktoken(),
                                      turnout::tokenizer::embedded_o200k_base_tiktoken()}) {
    const Vocabulary vocab = Vocabulary::from_tiktoken(text).value();
    const std::vector<TokenId> wrong = tokens_not_merging_to_themselves(vocab);
    EXPECT_TRUE(wrong.empty()) << wrong.size() << " of " << vocab.size() << " tokens, the first rank "
                               << (wrong.empty() ? 0 : wrong[0]);
  }
}

// The check can fail: "abc" with neither "ab" nor "bc" a token is never reached by a
// merge ([a][b][c] stays three tokens), so its whole-token shortcut would differ.
TEST(Vocabulary, ATokenNoMergeReachesIsFound) {
  const Vocabulary vocab = Vocabulary::from_tiktoken(tiktoken_text({"abc", "xy"})).value();
  EXPECT_EQ(tokens_not_merging_to_themselves(vocab), std::vector<TokenId>{256});
}

TEST(Vocabulary, MalformedTextIsAnErrorNamingTheLine) {
  const std::string bytes = tiktoken_text({});
  struct Case {
    std::string text;
    std::string message;
  };
  const Case cases[] = {
      {bytes + "YWI= 7\n", "vocabulary line 257: ranks must be 0, 1, 2, ... in order"},
      {bytes + "YWI=\n", "vocabulary line 257: expected '<base64> <rank>'"},
      {bytes + "YWI= x\n", "vocabulary line 257: bad rank"},
      {bytes + "Y*I= 256\n", "vocabulary line 257: bad base64"},
      {bytes + " 256\n", "vocabulary line 257: empty token"},
      {tiktoken_text({}).substr(tiktoken_text({}).find('\n') + 1), "vocabulary line 1: ranks must be 0, 1, 2, ... in order"},
      {"YWI= 0\n", "vocabulary has no token for byte 0"},
  };
  for (const Case& bad : cases) {
    const auto vocab = Vocabulary::from_tiktoken(bad.text);
    ASSERT_FALSE(vocab.has_value()) << bad.message;
    EXPECT_EQ(vocab.error().message, bad.message);
  }
}

}  // namespace
