#pragma once
// Byte-pair merging of a long repetitive piece — a megabyte of "a", of spaces, of one
// emoji, of "\r\n", a "====----====" rule — done on its repetitions instead of its bytes.
//
// The piece is held as a few segments, each a short block of tokens repeated `count`
// times. tiktoken's rule merges the adjacent pair of lowest rank, the leftmost on ties.
// When that pair lies inside a segment's block (or across two of its repetitions), the
// same pair recurs in every repetition; if the pairs each merge creates rank above it, it
// stays the lowest pair after each merge, so tiktoken merges it in every repetition, left
// to right, and one step here does all of them: merging a block pair in place, or halving
// a run of one token. So a piece of a few segments takes a few steps per doubling of its
// tokens' length, O(log n) steps instead of O(n) merges. Where a step cannot be taken for
// every repetition at once, one repetition is split off and merged alone (always exact);
// if the segments multiply past a bound, merge() gives up and the caller merges byte by byte.
#include "tokenizer/vocabulary.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace turnout::tokenizer {

// A block of tokens repeated `count` times, with the ranks of the pairs it takes part in.
struct RepeatedBlock {
  std::vector<TokenId> block;
  std::uint64_t count = 1;
  std::vector<TokenId> inner_ranks;  // inner_ranks[j]: rank of (block[j], block[j + 1])
  TokenId wrap_rank = kNoToken;      // rank of (block.back(), block.front()), if count >= 2
  TokenId next_rank = kNoToken;      // rank of (block.back(), the next segment's front); kNoToken for the last
  bool changed = true;               // the ranks need looking up again
};

class RepetitionMerger {
 public:
  // The longest repeating unit looked for, in bytes (an emoji is four).
  static constexpr std::size_t kMaxPeriod = 8;
  // Pieces of at most this many runs of one byte are taken too ("====----====").
  static constexpr std::size_t kMaxRuns = 16;
  // Bounds past which merge() gives up: segments, tokens in all blocks, steps (each step
  // merges at least once, so steps are bounded anyway; this keeps them few).
  static constexpr std::size_t kMaxSegments = 24;
  static constexpr std::size_t kMaxBlockTokens = 256;
  static constexpr std::size_t kMaxSteps = 4096;

  explicit RepetitionMerger(const Vocabulary& vocab) : vocab_(&vocab) {}

  // Splits `piece` into segments if it is repetitive: a unit of up to kMaxPeriod bytes
  // repeated (and a partial last repetition), or up to kMaxRuns runs of one byte.
  bool split(const char* piece, std::size_t length, std::vector<RepeatedBlock>& segments) const {
    segments.clear();
    for (std::size_t period = 1; period <= kMaxPeriod && 2 * period <= length; ++period) {
      if (std::memcmp(piece, piece + period, length - period) != 0) continue;
      segments.push_back(RepeatedBlock{byte_tokens(piece, period), length / period});
      if (length % period != 0) segments.push_back(RepeatedBlock{byte_tokens(piece, length % period), 1});
      return true;
    }
    // Runs are found before any segment is made, so a piece with too many costs no allocation.
    const auto* bytes = reinterpret_cast<const unsigned char*>(piece);
    std::array<std::size_t, kMaxRuns> run_ends;
    std::size_t runs = 0;
    for (std::size_t start = 0; start < length; start = run_ends[runs++]) {
      if (runs == kMaxRuns) return false;
      run_ends[runs] = run_end(bytes, start, length);
    }
    for (std::size_t run = 0, start = 0; run < runs; start = run_ends[run++]) {
      segments.push_back(RepeatedBlock{{vocab_->rank_of_byte(bytes[start])}, run_ends[run] - start});
    }
    return true;
  }

  // Merges split() segments in place, to the piece's tokens (in order, each block
  // `count` times); false if it gave up, in which case `segments` mean nothing.
  // `joined` is a buffer for pair lookups.
  bool merge(std::vector<RepeatedBlock>& segments, std::string& joined) const {
    for (std::size_t step = 0; step < kMaxSteps; ++step) {
      look_up_changed_ranks(segments, joined);
      const Pair best = lowest_pair(segments);
      if (best.rank == kNoToken) return true;
      switch (best.kind) {
        case PairKind::inner: merge_inner(segments, best.segment, best.index, best.rank, joined); break;
        case PairKind::wrap: merge_wrap(segments, best.segment, best.rank, joined); break;
        case PairKind::next: merge_next(segments, best.segment, best.rank); break;
      }
      if (!normalize(segments)) return false;
    }
    return false;
  }

 private:
  enum class PairKind { inner, wrap, next };
  struct Pair {
    TokenId rank = kNoToken;
    std::size_t segment = 0;
    PairKind kind = PairKind::inner;
    std::size_t index = 0;  // for inner pairs: the block position of the pair's left token
  };

  // The end of the run of bytes equal to bytes[start]: sixteen bytes at a time where SSE2
  // is there (x86-64's baseline), one bit per byte that differs; the rest byte by byte.
  static std::size_t run_end(const unsigned char* bytes, std::size_t start, std::size_t length) {
    std::size_t i = start + 1;
#if defined(__SSE2__)
    const __m128i value = _mm_set1_epi8(static_cast<char>(bytes[start]));
    for (; i + 16 <= length; i += 16) {
      const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + i));
      const auto differ = static_cast<unsigned>(~_mm_movemask_epi8(_mm_cmpeq_epi8(block, value)) & 0xffff);
      if (differ != 0) return i + static_cast<std::size_t>(std::countr_zero(differ));
    }
#endif
    while (i < length && bytes[i] == bytes[start]) ++i;
    return i;
  }

  std::vector<TokenId> byte_tokens(const char* bytes, std::size_t length) const {
    std::vector<TokenId> tokens(length);
    for (std::size_t i = 0; i < length; ++i) tokens[i] = vocab_->rank_of_byte(static_cast<unsigned char>(bytes[i]));
    return tokens;
  }

  TokenId joined_rank(TokenId left, TokenId right, std::string& joined) const {
    joined.assign(vocab_->bytes_of(left));
    joined.append(vocab_->bytes_of(right));
    return vocab_->rank_of(joined.data(), joined.size());
  }

  void look_up_changed_ranks(std::vector<RepeatedBlock>& segments, std::string& joined) const {
    for (std::size_t i = 0; i < segments.size(); ++i) {
      RepeatedBlock& segment = segments[i];
      if (segment.changed) {
        segment.inner_ranks.resize(segment.block.size() - 1);
        for (std::size_t j = 0; j + 1 < segment.block.size(); ++j) {
          segment.inner_ranks[j] = joined_rank(segment.block[j], segment.block[j + 1], joined);
        }
        segment.wrap_rank = segment.count >= 2 ? joined_rank(segment.block.back(), segment.block.front(), joined) : kNoToken;
      }
      if (i + 1 == segments.size()) {
        segment.next_rank = kNoToken;
      } else if (segment.changed || segments[i + 1].changed) {
        segment.next_rank = joined_rank(segment.block.back(), segments[i + 1].block.front(), joined);
      }
    }
    for (RepeatedBlock& segment : segments) segment.changed = false;
  }

  // The lowest-rank pair, leftmost on ties: candidates in position order (a segment's
  // block pairs, then the pair across its first two repetitions, then the pair with the
  // next segment), replaced only by a strictly lower rank.
  static Pair lowest_pair(const std::vector<RepeatedBlock>& segments) {
    Pair best;
    for (std::size_t i = 0; i < segments.size(); ++i) {
      const RepeatedBlock& segment = segments[i];
      for (std::size_t j = 0; j < segment.inner_ranks.size(); ++j) {
        if (segment.inner_ranks[j] < best.rank) best = Pair{segment.inner_ranks[j], i, PairKind::inner, j};
      }
      if (segment.count >= 2 && segment.wrap_rank < best.rank) best = Pair{segment.wrap_rank, i, PairKind::wrap};
      if (segment.next_rank < best.rank) best = Pair{segment.next_rank, i, PairKind::next};
    }
    return best;
  }

  // Replaces block[j] and block[j + 1] with `merged`.
  static void merge_in_block(std::vector<TokenId>& block, std::size_t j, TokenId merged) {
    block[j] = merged;
    block.erase(block.begin() + static_cast<std::ptrdiff_t>(j) + 1);
  }

  // Whether every block pair but the one at `except` ranks above r.
  static bool other_inner_pairs_rank_above(const RepeatedBlock& segment, std::size_t except, TokenId r) {
    for (std::size_t j = 0; j < segment.inner_ranks.size(); ++j) {
      if (j != except && segment.inner_ranks[j] <= r) return false;
    }
    return true;
  }

  // Makes segment i's first repetition a segment of its own (count 1), before the rest.
  static void split_off_first(std::vector<RepeatedBlock>& segments, std::size_t i) {
    RepeatedBlock first{segments[i].block, 1};
    --segments[i].count;
    segments[i].changed = true;
    segments.insert(segments.begin() + static_cast<std::ptrdiff_t>(i), std::move(first));
  }

  // Block pair j of segment i (rank r) is the lowest. tiktoken merges it in every
  // repetition in turn if, with it merged in the repetitions so far, every pair left of its
  // next occurrence ranks above r: the block's other pairs (one right of j may tie: the
  // same bytes split elsewhere), the pairs the merge creates inside a repetition and
  // between two (merged, merged; merged, not yet), and in the first repetition the pair
  // with the segment before. (Any pair ranking below r elsewhere would have been the
  // lowest already.) Else the first repetition is merged alone.
  void merge_inner(std::vector<RepeatedBlock>& segments, std::size_t i, std::size_t j, TokenId r,
                   std::string& joined) const {
    if (segments[i].count >= 2) {
      const RepeatedBlock& segment = segments[i];
      const std::vector<TokenId>& block = segment.block;
      const std::size_t last = block.size() - 1;
      const TokenId merged_first = j == 0 ? r : block.front();  // first/last token of a merged repetition
      const TokenId merged_last = j + 1 == last ? r : block.back();
      const bool every_repetition =
          other_inner_pairs_rank_above(segment, j, r) &&
          (j == 0 || joined_rank(block[j - 1], r, joined) > r) &&
          (j + 1 == last || joined_rank(r, block[j + 2], joined) > r) &&
          joined_rank(merged_last, merged_first, joined) > r &&   // two merged repetitions
          joined_rank(merged_last, block.front(), joined) > r &&  // a merged one, then one not yet
          (i == 0 || j != 0 || joined_rank(segments[i - 1].block.back(), r, joined) > r);
      if (!every_repetition) split_off_first(segments, i);
    }
    merge_in_block(segments[i].block, j, r);
    segments[i].changed = true;
  }

  // The pair across segment i's repetitions (last token, first token; rank r) is the lowest.
  void merge_wrap(std::vector<RepeatedBlock>& segments, std::size_t i, TokenId r, std::string& joined) const {
    const std::vector<TokenId> block = segments[i].block;
    const std::uint64_t count = segments[i].count;
    const TokenId before = i > 0 ? segments[i - 1].block.back() : kNoToken;
    if (block.size() == 1) {
      // A run of one token t: tiktoken merges its pairs left to right, halving it, while
      // (before, tt), (tt, t) and (tt, tt) rank above r.
      const TokenId token = block.front();
      const std::uint64_t pairs = count / 2;
      const bool whole_run = pairs < 2 || ((before == kNoToken || joined_rank(before, r, joined) > r) &&
                                           joined_rank(r, token, joined) > r &&
                                           (pairs < 3 || joined_rank(r, r, joined) > r));
      const std::uint64_t merges = whole_run ? pairs : 1;
      segments[i] = RepeatedBlock{{r}, merges};
      segments.insert(segments.begin() + static_cast<std::ptrdiff_t>(i) + 1, RepeatedBlock{{token}, count - 2 * merges});
      return;
    }
    // A longer block b0..bn: merged at every boundary, it becomes b0..bn-1, then
    // (r b1..bn-1) count-1 times, then bn. tiktoken does that if the pairs each merge
    // creates rank above r (the block's own pairs do: they are left of the first boundary,
    // so a tie would have gone to them).
    const std::size_t last = block.size() - 1;
    const bool every_boundary = joined_rank(block[last - 1], r, joined) > r &&
                                (block.size() > 2 || joined_rank(r, r, joined) > r) &&  // two tokens: merges meet
                                joined_rank(r, block[1], joined) > r;
    std::vector<RepeatedBlock> replacement;
    if (every_boundary) {
      std::vector<TokenId> middle(block.begin() + 1, block.end() - 1);
      middle.insert(middle.begin(), r);
      replacement.push_back(RepeatedBlock{std::vector<TokenId>(block.begin(), block.end() - 1), 1});
      replacement.push_back(RepeatedBlock{std::move(middle), count - 1});
      replacement.push_back(RepeatedBlock{{block.back()}, 1});
    } else {
      // The first two repetitions alone, merged at their boundary; the rest as they were.
      std::vector<TokenId> two(block);
      two.insert(two.end(), block.begin(), block.end());
      merge_in_block(two, last, r);
      replacement.push_back(RepeatedBlock{std::move(two), 1});
      replacement.push_back(RepeatedBlock{block, count - 2});
    }
    segments.erase(segments.begin() + static_cast<std::ptrdiff_t>(i));
    segments.insert(segments.begin() + static_cast<std::ptrdiff_t>(i), std::make_move_iterator(replacement.begin()),
                    std::make_move_iterator(replacement.end()));
  }

  // The pair across segments i and i + 1 (rank r) is the lowest: the repetitions it joins
  // become one segment of their own, merged there.
  static void merge_next(std::vector<RepeatedBlock>& segments, std::size_t i, TokenId r) {
    RepeatedBlock& left = segments[i];
    RepeatedBlock& right = segments[i + 1];
    std::vector<TokenId> joined_block(left.block);
    joined_block.insert(joined_block.end(), right.block.begin(), right.block.end());
    merge_in_block(joined_block, left.block.size() - 1, r);
    --left.count;
    --right.count;
    left.changed = true;
    right.changed = true;
    segments.insert(segments.begin() + static_cast<std::ptrdiff_t>(i) + 1, RepeatedBlock{std::move(joined_block), 1});
  }

  // Drops empty segments, joins neighbours with equal blocks and neighbouring single
  // repetitions, and marks what changed; false if the segments outgrew the bounds.
  static bool normalize(std::vector<RepeatedBlock>& segments) {
    std::size_t kept = 0;
    std::size_t block_tokens = 0;
    for (std::size_t i = 0; i < segments.size(); ++i) {
      RepeatedBlock& segment = segments[i];
      if (segment.count == 0 || segment.block.empty()) {
        if (kept > 0) segments[kept - 1].changed = true;  // it has a new neighbour
        continue;
      }
      if (kept > 0) {
        RepeatedBlock& previous = segments[kept - 1];
        if (previous.block == segment.block) {
          previous.count += segment.count;
          previous.changed = true;
          continue;
        }
        if (previous.count == 1 && segment.count == 1) {
          block_tokens += segment.block.size();
          previous.block.insert(previous.block.end(), segment.block.begin(), segment.block.end());
          previous.changed = true;
          continue;
        }
      }
      block_tokens += segment.block.size();
      if (kept != i) segments[kept] = std::move(segment);
      ++kept;
    }
    segments.resize(kept);
    return segments.size() <= kMaxSegments && block_tokens <= kMaxBlockTokens;
  }

  const Vocabulary* vocab_;
};

}  // namespace turnout::tokenizer
