#pragma once
// The reference the tokenizer's merge is checked against (unit tests and the fuzz target):
// tiktoken's merge rule written the obvious, quadratic way on std::string parts — merge
// the leftmost adjacent pair of lowest rank until no adjacent pair is a token.
#include "tokenizer/pretokenizer.hpp"
#include "tokenizer/vocabulary.hpp"

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::tokenizer::test {

inline void naive_merge(const Vocabulary& vocab, std::string_view piece, std::vector<TokenId>& out) {
  std::vector<std::string> parts;
  for (const char byte : piece) parts.emplace_back(1, byte);
  while (parts.size() > 1) {
    TokenId best_rank = kNoToken;
    std::size_t best = 0;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      const TokenId rank = vocab.rank_of(parts[i] + parts[i + 1]);
      if (rank < best_rank) {
        best_rank = rank;
        best = i;
      }
    }
    if (best_rank == kNoToken) break;
    parts[best] += parts[best + 1];
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
  for (const std::string& part : parts) out.push_back(vocab.rank_of(part));
}

// The ids of valid UTF-8 `text`: Scanner's pieces, each merged naively.
template <class Scanner>
std::vector<TokenId> naive_encode(const Vocabulary& vocab, const std::string& text) {
  std::vector<TokenId> ids;
  const auto* end = reinterpret_cast<BytePtr>(text.data()) + text.size();
  for (auto p = reinterpret_cast<BytePtr>(text.data()); p < end;) {
    const BytePtr piece_end = Scanner::piece_end(p, end);
    if (piece_end <= p || piece_end > end) {  // would loop forever or read past the text
      std::fprintf(stderr, "naive_encode: the scanner returned an empty or overlong piece\n");
      std::abort();
    }
    naive_merge(vocab, std::string_view(reinterpret_cast<const char*>(p), static_cast<std::size_t>(piece_end - p)),
                ids);
    p = piece_end;
  }
  return ids;
}

}  // namespace turnout::tokenizer::test
