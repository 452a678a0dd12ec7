// The embeddings count: each text in the model's encoding, no per-input overhead; token
// arrays count their length; the longest input is reported for the per-input limit.
#include "tokenizer/embeddings_count.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace tk = turnout::tokenizer;

TEST(EmbeddingsCount, SumsTextsAndTokenArraysWithoutOverhead) {
  const auto& cl100k = tk::Encoding::get(tk::EncodingId::cl100k_base);
  std::vector<tk::EmbeddingInputView> inputs{
      {"hello world", 0, false},           // 2 tokens (tiktoken: [15339, 1917])
      {"The quick brown fox", 0, false},   // 4 tokens
      {"", 7, true},                       // a token array of length 7
  };
  const auto count = tk::count_embedding_inputs(cl100k, inputs);
  EXPECT_EQ(count.total, 13u);
  EXPECT_EQ(count.largest, 7u);
}

TEST(EmbeddingsCount, NoInputsCountZero) {
  const auto count = tk::count_embedding_inputs(tk::Encoding::get(tk::EncodingId::cl100k_base), {});
  EXPECT_EQ(count.total, 0u);
  EXPECT_EQ(count.largest, 0u);
}
