#pragma once
// A BPE vocabulary: token bytes <-> rank, built from the standard .tiktoken text format
// ("<base64 token> <rank>" per line). Immutable after construction.
#include "common/result.hpp"
#include "tokenizer/huge_page_allocator.hpp"
#include "tokenizer/tokenizer.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::tokenizer {

inline constexpr TokenId kNoToken = 0xffffffffu;

// memcmp() == 0 for the short strings tokens are, without a library call.
inline bool bytes_equal(const char* a, const char* b, std::size_t length) {
  auto load64 = [](const char* p) { std::uint64_t w; std::memcpy(&w, p, 8); return w; };
  auto load32 = [](const char* p) { std::uint32_t w; std::memcpy(&w, p, 4); return w; };
  if (length >= 8) {
    for (std::size_t i = 0; i + 8 < length; i += 8) {
      if (load64(a + i) != load64(b + i)) return false;
    }
    return load64(a + length - 8) == load64(b + length - 8);
  }
  if (length >= 4) return load32(a) == load32(b) && load32(a + length - 4) == load32(b + length - 4);
  for (std::size_t i = 0; i < length; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

// A fast 64-bit hash for short byte strings (tokens are at most a few hundred bytes).
// Reads whole words, overlapping at the tail, instead of byte by byte.
inline std::uint64_t hash_token_bytes(const char* bytes, std::size_t length) {
  auto load64 = [](const char* p) { std::uint64_t w; std::memcpy(&w, p, 8); return w; };
  auto load32 = [](const char* p) { std::uint32_t w; std::memcpy(&w, p, 4); return std::uint64_t{w}; };
  auto mix = [](std::uint64_t h, std::uint64_t w) {
    h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 31);
  };
  std::uint64_t h = (length + 1) * 0x9e3779b97f4a7c15ULL;
  if (length >= 8) {
    const char* p = bytes;
    std::size_t left = length;
    for (; left > 8; left -= 8, p += 8) h = mix(h, load64(p));
    h = mix(h, load64(bytes + length - 8));
  } else if (length >= 4) {
    h = mix(h, load32(bytes) | (load32(bytes + length - 4) << 32));
  } else if (length > 0) {
    const auto* u = reinterpret_cast<const unsigned char*>(bytes);
    h = mix(h, std::uint64_t{u[0]} | (std::uint64_t{u[length / 2]} << 8) | (std::uint64_t{u[length - 1]} << 16));
  }
  h *= 0x94d049bb133111ebULL;
  return h ^ (h >> 32);
}

class Vocabulary {
 public:
  // Ranks fit in 24 bits (the index packs them with a length; the merger's radix sort
  // relies on 27); OpenAI's are below 2^18.
  static constexpr TokenId kMaxTokens = TokenId{1} << 24;

  // Parses .tiktoken text. Ranks must be exactly 0..n-1 and every single byte a token.
  static Result<Vocabulary> from_tiktoken(std::string_view text);

  std::size_t size() const { return offsets_.size() - 1; }

  // The rank of the token with exactly these bytes, or kNoToken.
  TokenId rank_of(const char* bytes, std::size_t length) const {
    return rank_of(bytes, length, hash_token_bytes(bytes, length));
  }
  // The same, for a caller that already has hash_token_bytes(bytes, length).
  TokenId rank_of(const char* bytes, std::size_t length, std::uint64_t hash) const {
    // Many lookups during merging are of byte strings that are not tokens; the filter
    // (small enough to stay in cache) turns nearly all of them away before the table.
    // The bucket is fetched while the filter is tested: for tokens, the two cache misses
    // overlap instead of following one another.
    std::size_t bucket = bucket_of(hash);
    __builtin_prefetch(&buckets_[bucket]);
    const std::uint64_t filter_mask = filter_mask_of(hash);
    if ((presence_filter_[filter_word_of(hash)] & filter_mask) != filter_mask) return kNoToken;
    // Bytes 8-15 of a longer token sit in their own array, fetched while the bucket is:
    // reading them through offsets_ and the byte arena was two more misses, one after
    // the other, on every hit of 9-16 bytes (a non-Latin word's tokens). Only past the
    // filter: most long strings looked up (whole pieces) are no token.
    if (length > 8) __builtin_prefetch(&second_heads_[bucket * Bucket::kSlots]);
    const std::uint64_t head = head_of(bytes, length);
    const std::uint64_t second_head = second_head_of(bytes, length);
    const std::uint32_t length_code = length_code_of(length);
    while (true) {
      const Bucket& candidates = buckets_[bucket];
      for (std::size_t slot = 0; slot < Bucket::kSlots; ++slot) {
        const std::uint32_t entry = candidates.entries[slot];
        if (entry == Bucket::kFree) return kNoToken;
        // Tokens of up to 8 bytes (most) are compared inside the bucket, up to 16 with
        // second_heads_, without touching the token byte arena.
        if (candidates.heads[slot] == head && (entry & 0xff) == length_code &&
            (length <= 8 || (second_heads_[bucket * Bucket::kSlots + slot] == second_head &&
                             (length <= 16 || tail_equal(entry >> 8, bytes, length))))) {
          return entry >> 8;
        }
      }
      if (++bucket == bucket_count_) bucket = 0;
    }
  }
  TokenId rank_of(std::string_view bytes) const { return rank_of(bytes.data(), bytes.size()); }
  TokenId rank_of_byte(unsigned char byte) const { return byte_rank_[byte]; }
  // The rank of a two-byte token (kNoToken if none): the first merge step, by table.
  TokenId rank_of_byte_pair(unsigned char first, unsigned char second) const {
    return byte_pair_rank_[(std::size_t{first} << 8) | second];
  }

  // Whether some token holds byte `first` immediately followed by `second`. Joining two
  // parts can only make a token if the last byte of one and the first of the other are
  // such a pair, and only about 10% of byte pairs are (6,611 in cl100k_base, 10,439 in
  // o200k_base): an 8 KB bit table that stays in L1 turns the rest away before the hash.
  bool byte_pair_occurs_in_a_token(unsigned char first, unsigned char second) const {
    const std::size_t pair = (std::size_t{first} << 8) | second;
    return ((inner_byte_pairs_[pair / 64] >> (pair % 64)) & 1) != 0;
  }
  // The rank of the token that is the parts [start, middle) and [middle, end) of `bytes`
  // joined, or kNoToken; the pair table first.
  TokenId rank_of_joined(const char* bytes, std::size_t start, std::size_t middle, std::size_t end) const {
    if (!byte_pair_occurs_in_a_token(static_cast<unsigned char>(bytes[middle - 1]), static_cast<unsigned char>(bytes[middle]))) {
      return kNoToken;
    }
    return rank_of(bytes + start, end - start);
  }

  // The bytes of token `rank` (which must be < size()).
  std::string_view bytes_of(TokenId rank) const {
    return std::string_view(token_bytes_).substr(offsets_[rank], offsets_[rank + 1] - offsets_[rank]);
  }

  // Heap bytes owned by this vocabulary (for the load-cost measurement).
  std::size_t memory_bytes() const;

 private:
  // The index is open addressing with linear probing over buckets of one cache line (five
  // slots), so a lookup nearly always reads one line, and it is kept small (about 20
  // bytes per token, 26 with the second heads): it is read at random, and a table that
  // outgrows the share of the last-level cache a core gets costs a memory access per
  // lookup (on the 2-core EPYC VM
  // a dependent random read costs 16 ns in a 5 MB table but 126 ns in an 8 MB one; the
  // o200k_base index went from 8 MB to 3.9 MB with this layout, and to 3.2 MB at 80% load).
  // The second heads (second_heads_, 2 MB for o200k_base) are read only for strings of
  // more than 8 bytes that pass the filter.
  struct alignas(64) Bucket {
    static constexpr std::size_t kSlots = 5;
    static constexpr std::uint32_t kFree = 0;  // tokens are never empty, so no entry is 0
    std::array<std::uint64_t, kSlots> heads{};    // a token's first (up to) 8 bytes, zero-padded
    std::array<std::uint32_t, kSlots> entries{};  // rank << 8 | length_code_of(length)
  };
  static_assert(sizeof(Bucket) == 64);
  static std::uint32_t length_code_of(std::size_t length) {
    return length < 0xff ? static_cast<std::uint32_t>(length) : 0xff;
  }
  // Multiply-shift range reduction: any bucket count, not just powers of two, so the
  // table's size follows the vocabulary's instead of doubling.
  std::size_t bucket_of(std::uint64_t hash) const {
    return static_cast<std::size_t>((std::uint64_t{static_cast<std::uint32_t>(hash)} * bucket_count_) >> 32);
  }
  // The presence filter is a blocked Bloom filter: a token sets kFilterProbes bits of one
  // 64-bit word, so a test reads one word, and at 8-16 bits per token the filter stays in
  // L2 (128 KB for cl100k_base, 256 KB for o200k_base).
  static constexpr unsigned kFilterProbes = 3;
  // The word: the top bits of the hash.
  std::size_t filter_word_of(std::uint64_t hash) const { return static_cast<std::size_t>(hash >> filter_shift_); }
  // The bits within it: hash bits 26-43, independent of the word for up to 2^20 words.
  static std::uint64_t filter_mask_of(std::uint64_t hash) {
    std::uint64_t mask = 0;
    for (unsigned probe = 0; probe < kFilterProbes; ++probe) mask |= std::uint64_t{1} << ((hash >> (26 + 6 * probe)) & 63);
    return mask;
  }
  // Whether token `rank`, whose first 16 bytes match, is exactly `bytes` (length > 16).
  bool tail_equal(TokenId rank, const char* bytes, std::size_t length) const {
    const std::string_view token = bytes_of(rank);
    return token.size() == length && bytes_equal(token.data() + 16, bytes + 16, length - 16);
  }
  // The first (up to) 8 bytes of a string as a zero-padded word. Zero padding at the top
  // of the word (and so the comparison of tokens of 10-15 bytes by their two heads) is
  // exact only in little-endian byte order.
  static_assert(std::endian::native == std::endian::little, "head_of assumes little-endian words");
  static std::uint64_t head_of(const char* bytes, std::size_t length) {
    // Two overlapping loads instead of a loop over the bytes: lookups come in all
    // lengths, and a loop's exit is a branch the predictor gets wrong. The overlapping
    // bytes are equal, so OR-ing the two words is exact.
    auto load16 = [](const char* p) { std::uint16_t w; std::memcpy(&w, p, 2); return std::uint64_t{w}; };
    auto load32 = [](const char* p) { std::uint32_t w; std::memcpy(&w, p, 4); return std::uint64_t{w}; };
    if (length >= 8) {
      std::uint64_t head;
      std::memcpy(&head, bytes, 8);
      return head;
    }
    if (length >= 4) return load32(bytes) | (load32(bytes + length - 4) << (8 * (length - 4)));
    if (length >= 2) return load16(bytes) | (load16(bytes + length - 2) << (8 * (length - 2)));
    return length == 1 ? std::uint64_t{static_cast<unsigned char>(bytes[0])} : 0;
  }
  // Bytes 8-15 of a string as a zero-padded word (0 for 8 bytes or fewer).
  static std::uint64_t second_head_of(const char* bytes, std::size_t length) {
    return length > 8 ? head_of(bytes + 8, std::min<std::size_t>(length - 8, 8)) : 0;
  }
  void build_index();

  std::string token_bytes_;              // all tokens' bytes, in rank order
  std::vector<std::uint32_t> offsets_;   // token r is token_bytes_[offsets_[r], offsets_[r+1])
  std::vector<Bucket, HugePageAllocator<Bucket>> buckets_;
  // By slot (bucket * kSlots + slot): bytes 8-15 of the slot's token, zero-padded (0 for
  // tokens of up to 8 bytes).
  std::vector<std::uint64_t, HugePageAllocator<std::uint64_t>> second_heads_;
  std::uint64_t bucket_count_ = 0;
  std::vector<std::uint64_t> presence_filter_;  // "may be a token", see filter_mask_of()
  unsigned filter_shift_ = 63;                  // hash >> filter_shift_ is the filter word
  std::array<TokenId, 256> byte_rank_{};
  std::vector<TokenId> byte_pair_rank_;  // 65536 entries
  std::array<std::uint64_t, 65536 / 64> inner_byte_pairs_{};  // see byte_pair_occurs_in_a_token()
};

}  // namespace turnout::tokenizer
