#pragma once
// A thread's cache of the pieces it has tokenized, kept across calls. Words repeat within
// a text, and in a gateway whole texts repeat too: every chat turn re-sends the history,
// and system prompts are the same on every request. Finding a piece here (a table that
// stays in L1/L2) is much cheaper than even one probe of the vocabulary's multi-megabyte
// hash table, let alone a merge.
//
// It only ever holds what the merge computed for exactly these bytes, so it cannot change
// a result. Its memory is bounded: short pieces in a fixed 4-way set-associative table,
// long ones (up to kMaxLongPieceBytes each) in a direct-mapped table holding at most
// kMaxLongCacheBytes.
#include "tokenizer/vocabulary.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace turnout::tokenizer {

class PieceCache {
 public:
  static constexpr std::size_t kMaxShortBytes = 30;
  static constexpr std::size_t kMaxShortTokens = 8;
  static constexpr std::size_t kMaxLongPieceBytes = 64 * 1024;
  static constexpr std::size_t kMaxLongCacheBytes = std::size_t{4} << 20;

  // The tokens of `piece` if it was stored before; empty if not. `hash` is
  // hash_token_bytes() of the piece.
  std::span<const TokenId> find(const char* piece, std::uint32_t length, std::uint64_t hash) const {
    if (length <= kMaxShortBytes) {
      if (short_entries_ == nullptr) return {};
      const std::size_t set = short_set(hash);
      // The ways whose tag matches, found without a branch per way (which way holds a
      // piece is what a predictor cannot guess): a 16-bit lane of `differences` is zero
      // where the tag matches. The zero-lane test can also flag a lane above a matching
      // one; the bytes are compared anyway.
      constexpr std::uint64_t kLaneOnes = 0x0001000100010001ULL;
      const std::uint64_t differences = short_tags_[set] ^ (tag_of(hash) * kLaneOnes);
      std::uint64_t matches = (differences - kLaneOnes) & ~differences & (kLaneOnes << 15);
      for (; matches != 0; matches &= matches - 1) {
        const ShortEntry& entry = short_entries_[set * kWays + std::countr_zero(matches) / 16];
        if (entry.length == length && bytes_equal(entry.bytes.data(), piece, length)) {
          return {entry.tokens.data(), entry.token_count};
        }
      }
      return {};
    }
    if (long_entries_.empty()) return {};
    const LongEntry& entry = long_entries_[long_index(hash)];
    if (entry.key != key_of(hash) || entry.bytes.size() != length || !bytes_equal(entry.bytes.data(), piece, length)) {
      return {};
    }
    return entry.tokens;
  }

  // Whether a piece of this length can be kept at all (longer ones are not worth copying).
  static bool may_keep(std::size_t length) { return length <= kMaxLongPieceBytes; }

  // Remembers the tokens of `piece`, if it is a kind of piece this cache keeps.
  void store(const char* piece, std::uint32_t length, std::uint64_t hash, std::span<const TokenId> tokens) {
    if (tokens.empty()) return;
    if (length <= kMaxShortBytes) {
      if (tokens.size() > kMaxShortTokens) return;
      if (short_entries_ == nullptr) {
        short_tags_ = std::make_unique<std::uint64_t[]>(kShortSets);
        short_entries_ = std::make_unique<ShortEntry[]>(kShortSets * kWays);
      }
      const std::size_t set = short_set(hash);
      const std::size_t way = way_to_replace(short_tags_[set], hash);
      short_tags_[set] = (short_tags_[set] & ~(std::uint64_t{0xffff} << (16 * way))) | (tag_of(hash) << (16 * way));
      ShortEntry& entry = short_entries_[set * kWays + way];
      entry.length = static_cast<std::uint8_t>(length);
      entry.token_count = static_cast<std::uint8_t>(tokens.size());
      std::copy(piece, piece + length, entry.bytes.begin());
      std::copy(tokens.begin(), tokens.end(), entry.tokens.begin());
      return;
    }
    if (!may_keep(length)) return;
    if (long_entries_.empty()) long_entries_.resize(kLongEntries);
    LongEntry& entry = long_entries_[long_index(hash)];
    long_cache_bytes_ -= entry.counted;
    entry.counted = 0;
    // The replaced piece's memory is reused when it is about the size needed: pieces of
    // CJK text are often 31-64 bytes, and an allocation for each (with the release of the
    // one it replaces) was 3% of cold CJK. A much bigger buffer is released instead: kept
    // for a short piece, a 64 KB piece's memory would hold the budget for good.
    if (entry.bytes.capacity() > std::max<std::size_t>(2 * length, 256) ||
        entry.tokens.capacity() > std::max<std::size_t>(2 * tokens.size(), 64)) {
      release(entry);
    }
    entry.key = key_of(hash);
    entry.bytes.assign(piece, length);
    entry.tokens.assign(tokens.begin(), tokens.end());
    const std::size_t held = entry.bytes.capacity() + 1 + entry.tokens.capacity() * sizeof(TokenId);
    if (long_cache_bytes_ + held > kMaxLongCacheBytes) {
      release(entry);
      return;
    }
    entry.counted = held;
    long_cache_bytes_ += held;
  }

  // Bytes held for long pieces (allocated for their bytes and tokens); at most
  // kMaxLongCacheBytes.
  std::size_t long_cache_bytes() const { return long_cache_bytes_; }

  // Forgets every piece: short ones by clearing their tags (32 KB), long ones in constant
  // time: they are stored under the hash mixed with a generation, and a new generation
  // matches none of them. (An old entry could still match by chance, but only for exactly
  // the same bytes, so its tokens are still right.) The memory stays, within the bounds above.
  void forget_all() {
    if (short_tags_ != nullptr) std::fill_n(short_tags_.get(), kShortSets, std::uint64_t{0});
    generation_ += 0x9e3779b97f4a7c15ULL;
  }

 private:
  // 4 ways: text re-sent as a whole (a chat history) revisits thousands of pieces in the
  // same order, which a direct-mapped table loses to conflicts (on the golden corpora a
  // second pass missed 3% of English and 19% of multilingual pieces; 0.2% and 5% with 4
  // ways).
  static constexpr std::size_t kWays = 4;
  static constexpr std::size_t kShortSets = 4096;
  static constexpr std::size_t kLongEntries = 4096;
  // One cache line: the piece's bytes and its tokens inline, so a hit reads nothing else.
  struct alignas(64) ShortEntry {
    std::uint8_t length = 0;
    std::uint8_t token_count = 0;
    std::array<char, kMaxShortBytes> bytes{};
    std::array<TokenId, kMaxShortTokens> tokens{};
  };
  static_assert(sizeof(ShortEntry) == 64);
  struct LongEntry {
    std::uint64_t key = 0;
    std::string bytes;  // empty: no piece
    std::vector<TokenId> tokens;
    // What its memory counts against kMaxLongCacheBytes: what it has allocated.
    std::size_t counted = 0;  // what long_cache_bytes_ holds for it
  };
  // Gives an entry's memory back (a move-assignment from an empty string keeps the buffer).
  static void release(LongEntry& entry) {
    std::string().swap(entry.bytes);
    std::vector<TokenId>().swap(entry.tokens);
    entry.counted = 0;
  }

  std::uint64_t key_of(std::uint64_t hash) const { return hash ^ generation_; }
  static std::size_t short_set(std::uint64_t hash) { return hash & (kShortSets - 1); }
  // A set's tags are one word, 16 bits a way, so a lookup reads the 32 KB tag table
  // (which stays in L1/L2) and only then the one entry whose tag matches: a piece not
  // seen before costs no read of the megabyte of entries. 0 is a free way.
  static std::uint64_t tag_of(std::uint64_t hash) { return (hash >> 48) | 1; }
  // A free way if there is one, else one chosen by the piece's hash: a piece always
  // displaces the same way, so a text revisited in the same order (where least-recently
  // used would evict each piece just before it comes back) keeps most of its pieces.
  static std::size_t way_to_replace(std::uint64_t tags, std::uint64_t hash) {
    for (std::size_t way = 0; way < kWays; ++way) {
      if (((tags >> (16 * way)) & 0xffff) == 0) return way;
    }
    return (hash >> 32) & (kWays - 1);
  }
  static std::size_t long_index(std::uint64_t hash) { return hash & (kLongEntries - 1); }

  std::unique_ptr<std::uint64_t[]> short_tags_;  // per set: kWays 16-bit tags (tag_of)
  std::unique_ptr<ShortEntry[]> short_entries_;  // by set, then way; both allocated on first store
  std::vector<LongEntry> long_entries_;          // likewise
  std::size_t long_cache_bytes_ = 0;             // held by long_entries_' pieces and tokens
  std::uint64_t generation_ = 0;
};

}  // namespace turnout::tokenizer
