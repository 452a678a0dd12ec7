#include "tokenizer/embeddings_count.hpp"

#include <algorithm>

namespace turnout::tokenizer {

EmbeddingCount count_embedding_inputs(const Encoding& encoding, std::span<const EmbeddingInputView> inputs) {
  EmbeddingCount count;
  for (const EmbeddingInputView& input : inputs) {
    const std::uint64_t tokens = input.is_tokens ? input.token_count : encoding.count(input.text);
    count.total += tokens;
    count.largest = std::max(count.largest, tokens);
  }
  return count;
}

}  // namespace turnout::tokenizer
