#pragma once
// A per-call cache of the pieces already tokenized in one text. Words repeat, and looking
// a piece up here (a small table that stays in L1/L2) is much cheaper than even one probe
// of the vocabulary's multi-megabyte hash table, let alone a merge. It lives for one
// encode()/count() call, so the shared Encoding stays immutable and thread-safe.
#include "tokenizer/vocabulary.hpp"

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace turnout::tokenizer {

class PieceCache {
 public:
  static constexpr std::size_t kMaxTokens = 3;  // pieces of more tokens are not cached

  // `text` must outlive the cache: entries point back into it.
  explicit PieceCache(const char* text) : text_(text), entries_(kEntries) {}

  // The tokens of the piece at text[offset, offset + length) if it was seen before.
  std::span<const TokenId> find(std::uint32_t offset, std::uint32_t length, std::uint64_t hash) const {
    const Entry& entry = entries_[hash & (kEntries - 1)];
    if (entry.hash != hash || entry.length != length ||
        !bytes_equal(text_ + entry.offset, text_ + offset, length)) {
      return {};
    }
    return {entry.tokens.data(), entry.token_count};
  }

  void store(std::uint32_t offset, std::uint32_t length, std::uint64_t hash, std::span<const TokenId> tokens) {
    if (tokens.empty() || tokens.size() > kMaxTokens) return;
    Entry& entry = entries_[hash & (kEntries - 1)];
    entry.hash = hash;
    entry.offset = offset;
    entry.length = length;
    entry.token_count = static_cast<std::uint32_t>(tokens.size());
    for (std::size_t i = 0; i < tokens.size(); ++i) entry.tokens[i] = tokens[i];
  }

 private:
  static constexpr std::size_t kEntries = 2048;
  struct Entry {
    std::uint64_t hash = 0;
    std::uint32_t offset = 0;
    std::uint32_t length = 0;  // 0: empty (pieces are never empty)
    std::uint32_t token_count = 0;
    std::array<TokenId, kMaxTokens> tokens{};
  };

  const char* text_;
  std::vector<Entry> entries_;
};

}  // namespace turnout::tokenizer
