#pragma once
// Byte-pair merging of one pre-tokenized piece, with tiktoken's exact rule: start from
// single bytes and repeatedly merge the adjacent pair whose concatenation has the lowest
// rank, the leftmost one on ties, until no adjacent pair is a token.
//
// Short pieces (nearly all of them) use tiktoken's own scan over a small array on the
// stack. Long pieces use a linked list and a priority queue keyed by (rank, position),
// which picks the same pair in O(log n) instead of O(n), so a megabyte-long run of one
// letter costs O(n log n) rather than O(n^2): the initial pairs are radix-sorted once,
// pairs created by merging go to a 4-ary heap, and runs of equal-rank merges proceed
// left to right without touching the queue. Created pairs that arrive in ascending key
// order (the usual case in long runs: equal ranks, positions moving right) go to a plain
// sorted queue instead of the heap, so those merges cost O(1) instead of O(log n).
// Long pieces that repeat a short unit (a megabyte of "a", of spaces, of one emoji) or are
// a few runs of one byte are merged on their repetitions instead (RepetitionMerger), in
// O(log n) steps. Pieces with non-ASCII characters (up to 64 of them) are merged one
// character at a time where that is exact (CharacterMerger).
#include "tokenizer/character_merge.hpp"
#include "tokenizer/min_heap.hpp"
#include "tokenizer/repetition_merge.hpp"
#include "tokenizer/vocabulary.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace turnout::tokenizer {

// One part of a long piece, indexed by its first byte: a doubly linked list.
struct LinkedPart {
  std::uint32_t next;      // first byte of the following part (or the piece length)
  std::uint32_t previous;  // first byte of the preceding part (or 0xffffffff)
  TokenId token;           // the part's token
  TokenId pair_rank;       // rank of this part joined with the next, kNoToken if none/dead
};

// Buffers for long pieces, reused across the pieces of one call and, as part of the
// tokenizer's per-thread state (tokenizer.cpp), across the calls of one thread: a
// megabyte-long piece needs about 30 bytes of them per byte, and taking that much fresh
// memory from the kernel (page faults, zeroing) costs more than the merging itself.
struct MergeScratch {
  std::vector<LinkedPart> parts;
  // Starts of the initial (two-byte) pairs, sorted by rank once; a pair's rank is looked up
  // again from its bytes rather than stored, which halves these two buffers.
  std::vector<std::uint32_t> initial_pairs;
  std::vector<std::uint32_t> sort_buffer;
  // Pair keys (rank << 32 | start) of the pairs that merging creates: in a heap, or in a
  // plain queue while they arrive in ascending order.
  std::vector<std::uint64_t> heap;
  std::vector<std::uint64_t> ascending_pairs;

  // Ranks of recently looked-up (left token, right token) pairs. Long pieces are mostly
  // repetitive (runs of one character, base64, rules), so most lookups hit.
  struct CachedPair {
    TokenId left = kNoToken;
    TokenId right = kNoToken;
    TokenId merged = kNoToken;
  };
  static constexpr std::size_t kMaxPairCacheSize = 4096;
  std::vector<CachedPair> pair_cache;  // a power of two in size

  // For repetitive pieces (RepetitionMerger).
  std::vector<RepeatedBlock> segments;
  std::string joined;

  std::size_t capacity_bytes() const {
    return parts.capacity() * sizeof(LinkedPart) +
           (initial_pairs.capacity() + sort_buffer.capacity()) * sizeof(std::uint32_t) +
           (heap.capacity() + ascending_pairs.capacity()) * sizeof(std::uint64_t) +
           pair_cache.capacity() * sizeof(CachedPair);
  }
  // Gives the memory back if it has grown past `limit` bytes (after an unusually long piece).
  void trim_to(std::size_t limit) {
    if (capacity_bytes() > limit) *this = MergeScratch{};
  }
};

class BytePairMerger {
 public:
  // Up to this length the quadratic scan is faster than the linked list and queue of
  // merge_long (measured on the golden multilingual corpus: at 64 bytes and below the scan
  // wins, at 65-128 bytes merge_long takes 2.5 instead of 3.8 us a piece).
  static constexpr std::size_t kShortPieceLimit = 64;

  // With `characters`, pieces with non-ASCII characters are merged character by
  // character where that is exact (CharacterMerger), which is much faster for non-Latin text.
  explicit BytePairMerger(const Vocabulary& vocab, const CharacterTable* characters = nullptr)
      : vocab_(&vocab), repetition_merger_(vocab) {
    if (characters != nullptr) character_merger_.emplace(vocab, *characters);
  }

  // Calls sink(token) for each token of `piece`, in order.
  template <class Sink>
  void merge_piece(const char* piece, std::size_t length, Sink&& sink, MergeScratch& scratch) const {
    if (length == 1) {
      sink(vocab_->rank_of_byte(static_cast<unsigned char>(piece[0])));
      return;
    }
    merge_piece(piece, length, hash_token_bytes(piece, length), sink, scratch);
  }
  // The same, for a piece of at least two bytes whose hash_token_bytes() the caller has.
  template <class Sink>
  void merge_piece(const char* piece, std::size_t length, std::uint64_t hash, Sink&& sink,
                   MergeScratch& scratch) const {
    const TokenId whole = vocab_->rank_of(piece, length, hash);
    if (whole != kNoToken) {
      sink(whole);
      return;
    }
    const bool non_ascii = length <= 3 * CharacterMerger::kMaxCharacters && has_non_ascii(piece, length);
    if (character_merger_ && non_ascii && character_merger_->merge_piece(piece, length, sink)) {
      return;
    } else if (length <= kShortPieceLimit) {
      // The seam check pays where seams are often in no token (the bytes of emoji, of
      // characters next to U+FFFD); in ASCII words nearly every seam is in one, and the
      // check only adds to each lookup.
      if (non_ascii) {
        merge_short<true>(piece, length, sink);
      } else {
        merge_short<false>(piece, length, sink);
      }
    } else if (repetition_merger_.split(piece, length, scratch.segments) &&
               repetition_merger_.merge(scratch.segments, scratch.joined)) {
      for (const RepeatedBlock& segment : scratch.segments) {
        for (std::uint64_t i = 0; i < segment.count; ++i) {
          for (const TokenId token : segment.block) sink(token);
        }
      }
    } else {
      merge_long(piece, length, sink, scratch);
    }
  }

 private:
  struct Part {
    std::uint32_t start;
    TokenId token;
    TokenId pair_rank;  // rank of this part joined with the next one
  };

  static bool has_non_ascii(const char* piece, std::size_t length) {
    std::uint64_t high_bits = 0;
    std::size_t i = 0;
    for (; i + 8 <= length; i += 8) {
      std::uint64_t word;
      std::memcpy(&word, piece + i, 8);
      high_bits |= word;
    }
    for (; i < length; ++i) high_bits |= static_cast<unsigned char>(piece[i]);
    return (high_bits & 0x8080808080808080ULL) != 0;
  }

  TokenId pair_rank(const char* piece, std::uint32_t start, std::uint32_t end) const {
    return vocab_->rank_of(piece + start, end - start);
  }

  // Sorts the starts of initial pairs (in ascending order) by their pairs' ranks, stably,
  // with a radix sort on the rank bits: linear, unlike a comparison sort. Only the digits
  // in which the ranks differ get a pass, so a run of one character (one rank) needs none.
  void sort_by_rank(const unsigned char* bytes, std::vector<std::uint32_t>& starts,
                    std::vector<std::uint32_t>& buffer) const {
    if (starts.empty()) return;
    constexpr unsigned kDigitBits = 9;
    constexpr std::uint32_t kDigitMask = (1u << kDigitBits) - 1;
    constexpr unsigned kDigits = 3;
    static_assert(Vocabulary::kMaxTokens <= TokenId{1} << (kDigits * kDigitBits));
    auto rank_at = [&](std::uint32_t start) { return vocab_->rank_of_byte_pair(bytes[start], bytes[start + 1]); };
    const TokenId first_rank = rank_at(starts.front());
    TokenId differing_bits = 0;
    for (const std::uint32_t start : starts) differing_bits |= rank_at(start) ^ first_rank;
    buffer.resize(starts.size());
    for (unsigned shift = 0; shift < kDigits * kDigitBits; shift += kDigitBits) {
      if (((differing_bits >> shift) & kDigitMask) == 0) continue;
      std::array<std::uint32_t, (1u << kDigitBits) + 1> bucket_starts{};
      for (const std::uint32_t start : starts) ++bucket_starts[((rank_at(start) >> shift) & kDigitMask) + 1];
      for (std::size_t bucket = 1; bucket < bucket_starts.size(); ++bucket) bucket_starts[bucket] += bucket_starts[bucket - 1];
      for (const std::uint32_t start : starts) buffer[bucket_starts[(rank_at(start) >> shift) & kDigitMask]++] = start;
      starts.swap(buffer);
    }
  }

  // With kCheckSeams, a joined pair is looked up only if the bytes at its seam occur in
  // some token (Vocabulary::rank_of_joined).
  template <bool kCheckSeams, class Sink>
  void merge_short(const char* piece, std::size_t length, Sink& sink) const {
    std::array<Part, kShortPieceLimit> parts;
    const auto* bytes = reinterpret_cast<const unsigned char*>(piece);
    std::size_t count = length;
    for (std::uint32_t i = 0; i < count; ++i) {
      parts[i] = Part{i, vocab_->rank_of_byte(bytes[i]),
                      i + 1 < count ? vocab_->rank_of_byte_pair(bytes[i], bytes[i + 1]) : kNoToken};
    }
    auto part_end = [&](std::size_t i) {
      return i + 1 < count ? parts[i + 1].start : static_cast<std::uint32_t>(length);
    };
    while (count > 1) {
      // The lowest rank, leftmost on ties, as the minimum of (rank, position) keys: a
      // min without a branch, since which pair wins is what the predictor cannot guess.
      std::uint64_t best_key = std::uint64_t{parts[0].pair_rank} << 32;
      for (std::size_t i = 1; i + 1 < count; ++i) {
        best_key = std::min(best_key, (std::uint64_t{parts[i].pair_rank} << 32) | i);
      }
      const auto best = static_cast<std::size_t>(static_cast<std::uint32_t>(best_key));
      if (parts[best].pair_rank == kNoToken) break;
      parts[best].token = parts[best].pair_rank;
      std::memmove(&parts[best + 1], &parts[best + 2], (count - best - 2) * sizeof(Part));
      --count;
      auto joined_rank = [&](std::size_t first) {
        const std::uint32_t start = parts[first].start;
        const std::uint32_t middle = parts[first + 1].start;
        const std::uint32_t end = part_end(first + 1);
        return kCheckSeams ? vocab_->rank_of_joined(piece, start, middle, end) : pair_rank(piece, start, end);
      };
      parts[best].pair_rank = best + 1 < count ? joined_rank(best) : kNoToken;
      if (best > 0) parts[best - 1].pair_rank = joined_rank(best - 1);
    }
    for (std::size_t i = 0; i < count; ++i) sink(parts[i].token);
  }

  template <class Sink>
  void merge_long(const char* piece, std::size_t length, Sink& sink, MergeScratch& scratch) const {
    constexpr std::uint32_t kNone = 0xffffffffu;
    const auto* bytes = reinterpret_cast<const unsigned char*>(piece);
    const auto n = static_cast<std::uint32_t>(length);
    auto& parts = scratch.parts;
    // Only ever grown: every part below n is written before it is read, and shrinking
    // would make the next longer piece value-initialize the tail again.
    if (parts.size() < n) parts.resize(n);
    // Sized to the piece: clearing a large cache for a short piece would cost more than it saves.
    scratch.pair_cache.assign(std::min(MergeScratch::kMaxPairCacheSize, std::bit_ceil(length)),
                              MergeScratch::CachedPair{});
    const std::size_t pair_cache_mask = scratch.pair_cache.size() - 1;
    scratch.heap.clear();
    QuaternaryMinHeap heap(scratch.heap);
    auto& ascending = scratch.ascending_pairs;
    ascending.clear();
    std::size_t next_ascending = 0;
    // Queues a created pair: on the sorted queue if that keeps it sorted, else on the heap.
    auto push_pair = [&](std::uint64_t k) {
      if (next_ascending == ascending.size()) {
        ascending.clear();
        next_ascending = 0;
      }
      if (ascending.empty() || ascending.back() <= k) {
        ascending.push_back(k);
      } else {
        heap.push(k);
      }
    };
    auto key = [](TokenId r, std::uint32_t start) { return (std::uint64_t{r} << 32) | start; };
    // The rank of the part at `first` joined with the part at `second` (ending at `end`).
    auto joined_rank = [&](std::uint32_t first, std::uint32_t second, std::uint32_t end) {
      const TokenId left = parts[first].token;
      const TokenId right = parts[second].token;
      const std::uint64_t mixed = (std::uint64_t{left} * 0x9e3779b97f4a7c15ULL) ^ right;
      auto& cached = scratch.pair_cache[(mixed ^ (mixed >> 29)) & pair_cache_mask];
      if (cached.left != left || cached.right != right) cached = {left, right, pair_rank(piece, first, end)};
      return cached.merged;
    };

    auto& initial = scratch.initial_pairs;
    initial.clear();
    initial.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) {
      const TokenId rank = i + 1 < n ? vocab_->rank_of_byte_pair(bytes[i], bytes[i + 1]) : kNoToken;
      parts[i] = LinkedPart{i + 1, i == 0 ? kNone : i - 1, vocab_->rank_of_byte(bytes[i]), rank};
      if (rank != kNoToken) initial.push_back(i);
    }
    sort_by_rank(bytes, initial, scratch.sort_buffer);
    // A key is stale once its pair has changed. Pairs only grow, so it stays stale.
    auto stale = [&](std::uint64_t k) { return parts[static_cast<std::uint32_t>(k)].pair_rank != (k >> 32); };
    auto initial_key = [&](std::uint32_t start) { return key(vocab_->rank_of_byte_pair(bytes[start], bytes[start + 1]), start); };
    std::size_t next_initial = 0;
    while (true) {
      while (next_initial < initial.size() && stale(initial_key(initial[next_initial]))) ++next_initial;
      while (next_ascending < ascending.size() && stale(ascending[next_ascending])) ++next_ascending;
      while (!heap.empty() && stale(heap.top())) heap.pop();
      // The smallest live key of the three sources.
      constexpr std::uint64_t kExhausted = ~std::uint64_t{0};
      const std::uint64_t initial_top = next_initial < initial.size() ? initial_key(initial[next_initial]) : kExhausted;
      const std::uint64_t ascending_top = next_ascending < ascending.size() ? ascending[next_ascending] : kExhausted;
      const std::uint64_t heap_top = heap.empty() ? kExhausted : heap.top();
      const std::uint64_t top = std::min({initial_top, ascending_top, heap_top});
      if (top == kExhausted) break;
      if (top == initial_top) {
        ++next_initial;
      } else if (top == ascending_top) {
        ++next_ascending;
      } else {
        heap.pop();
      }
      std::uint32_t start = static_cast<std::uint32_t>(top);
      const auto merged = static_cast<TokenId>(top >> 32);
      // Merge at `start`, then keep going right while the next pair has the same rank and
      // is therefore the next minimum: entries left of `start` have larger keys, the new
      // pairs this merge creates are checked below, and a merged token never has the same
      // rank as a longer one. Runs of one character become one pass instead of a heap
      // operation per merge.
      while (true) {
        const std::uint32_t removed = parts[start].next;
        const std::uint32_t after = parts[removed].next;
        parts[start].token = merged;
        parts[start].next = after;
        if (after < n) parts[after].previous = start;
        parts[removed].pair_rank = kNoToken;
        const TokenId start_rank = after < n ? joined_rank(start, after, parts[after].next) : kNoToken;
        parts[start].pair_rank = start_rank;
        const std::uint32_t before = parts[start].previous;
        TokenId before_rank = kNoToken;
        if (before != kNone) {
          before_rank = joined_rank(before, start, after);
          parts[before].pair_rank = before_rank;
          if (before_rank != kNoToken) push_pair(key(before_rank, before));
        }
        const bool next_is_minimum =
            after < n && parts[after].pair_rank == merged && start_rank > merged && before_rank > merged;
        if (!next_is_minimum) {
          if (start_rank != kNoToken) push_pair(key(start_rank, start));
          break;
        }
        // `start` becomes the next merge's `before`, which queues its final pair.
        start = after;
      }
    }
    for (std::uint32_t i = 0; i < n; i = parts[i].next) sink(parts[i].token);
  }

  const Vocabulary* vocab_;
  RepetitionMerger repetition_merger_;
  std::optional<CharacterMerger> character_merger_;
};

}  // namespace turnout::tokenizer
