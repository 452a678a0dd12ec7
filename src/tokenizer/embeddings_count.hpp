#pragma once
// The count OpenAI bills for an embeddings request: the tokens of every input, in the
// model's encoding (cl100k_base for text-embedding-3-small/-large and ada-002), with no
// per-input overhead. An input sent as a token array is already tokenized: its length is
// its count.
#include "tokenizer/tokenizer.hpp"

#include <cstdint>
#include <span>
#include <string_view>

namespace turnout::tokenizer {

// One element of `input`: text, or a token array (then only its length matters).
struct EmbeddingInputView {
  std::string_view text;          // a text input
  std::uint64_t token_count = 0;  // a token-array input
  bool is_tokens = false;
};

struct EmbeddingCount {
  std::uint64_t total = 0;    // what the call is billed for
  std::uint64_t largest = 0;  // the longest single input: the model's limit is per input
};

EmbeddingCount count_embedding_inputs(const Encoding& encoding, std::span<const EmbeddingInputView> inputs);

}  // namespace turnout::tokenizer
