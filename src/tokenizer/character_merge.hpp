#pragma once
// Byte-pair merging of a non-ASCII piece one character at a time (see character_table.hpp
// for why that gives tiktoken's result). A CJK sentence of 40 characters is 120 bytes: the
// byte-level merge looks up ~240 pairs and scans ~120 parts per merge to make 40 tokens
// that are mostly single characters; here each character is one table read, and only the
// pairs of whole characters are looked up (in CJK text nearly all miss the presence
// filter).
//
// Characters that merge alone to one token are one part each, ASCII too; characters
// that stay 2-3 tokens cut the piece into runs merged independently; characters next to
// a boundary where a ragged token may arise, or beyond U+FFFF, go in as their bytes. Each
// run is merged with tiktoken's short-piece scan (as merge_short in bpe.hpp).
#include "tokenizer/character_table.hpp"
#include "tokenizer/vocabulary.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

namespace turnout::tokenizer {

class CharacterMerger {
 public:
  // Pieces of more characters than this go to the byte-level merge.
  static constexpr std::size_t kMaxCharacters = 64;
  // Parts of one run: at most a part per byte.
  static constexpr std::size_t kMaxParts = 4 * kMaxCharacters;

  CharacterMerger(const Vocabulary& vocab, const CharacterTable& table) : vocab_(&vocab), table_(&table) {}

  // Calls sink(token) for each token of `piece` (valid UTF-8, at least two bytes, not
  // itself a token) and returns true; or returns false, having called nothing, if the
  // piece has more than kMaxCharacters characters or no non-ASCII character would go in
  // whole.
  template <class Sink>
  bool merge_piece(const char* piece, std::size_t length, Sink& sink) const {
    const auto* bytes = reinterpret_cast<const unsigned char*>(piece);
    std::array<std::uint32_t, kMaxCharacters> entries;
    std::array<char32_t, kMaxCharacters> code_points;  // 0x10000 for any beyond the table
    std::array<std::uint32_t, kMaxCharacters + 1> starts;
    std::size_t count = 0;
    for (std::size_t i = 0; i < length; ++count) {
      if (count == kMaxCharacters) return false;
      const unsigned lead = bytes[i];
      starts[count] = static_cast<std::uint32_t>(i);
      char32_t code_point = 0x10000;
      if (lead < 0x80) {
        code_point = lead;
        i += 1;
      } else if (lead < 0xe0) {
        code_point = ((lead & 0x1fu) << 6) | (bytes[i + 1] & 0x3fu);
        i += 2;
      } else if (lead < 0xf0) {
        code_point = ((lead & 0x0fu) << 12) | ((bytes[i + 1] & 0x3fu) << 6) | (bytes[i + 2] & 0x3fu);
        i += 3;
      } else {
        i += 4;
      }
      code_points[count] = code_point;
      entries[count] = code_point < 0x10000 ? table_->entry(code_point) : kBeyondTable;
    }
    starts[count] = static_cast<std::uint32_t>(length);

    // A character next to a boundary where a ragged token may arise, or whose merge the
    // table does not describe, goes in as its bytes, as the byte-level merge has them; the
    // others as one part each.
    std::array<bool, kMaxCharacters> as_bytes;
    bool ragged_before = false;
    bool any_whole = false;
    for (std::size_t c = 0; c < count; ++c) {
      const bool ragged_after = c + 1 < count && CharacterTable::boundary_may_be_ragged(entries[c], entries[c + 1]);
      as_bytes[c] = ragged_before || ragged_after || (entries[c] & CharacterTable::kUnsupported) != 0;
      any_whole |= !as_bytes[c] && starts[c + 1] - starts[c] > 1;
      ragged_before = ragged_after;
    }
    // Nothing to gain: the byte-level merge's tables do it faster (emoji, ragged scripts).
    if (!any_whole) return false;

    std::array<Part, kMaxParts> parts;
    std::size_t part_count = 0;
    bool previous_whole = false;  // whether character c - 1 went in as one part
    for (std::size_t c = 0; c < count; ++c) {
      const std::uint32_t entry = entries[c];
      if (as_bytes[c]) {
        for (std::uint32_t b = starts[c]; b < starts[c + 1]; ++b) {
          parts[part_count++] = Part{b, vocab_->rank_of_byte(bytes[b]), kNoToken};
        }
        previous_whole = false;
      } else if ((entry & CharacterTable::kSplit) != 0) {
        // It never joins a neighbour: what precedes it is merged on its own.
        merge_run(piece, parts.data(), part_count, starts[c], sink);
        part_count = 0;
        emit_split(bytes + starts[c], starts[c + 1] - starts[c], sink);
        previous_whole = false;
      } else {
        // Two whole characters (so no ragged token may arise between them) that no token
        // holds side by side: nothing is ever merged across them, and what precedes is
        // merged on its own (CharacterTable::bigram_may_occur). ASCII pairs are nearly
        // all in some token; they skip the test.
        if (previous_whole && (code_points[c - 1] | code_points[c]) >= 0x80 &&
            !table_->bigram_may_occur(code_points[c - 1], code_points[c])) {
          merge_run(piece, parts.data(), part_count, starts[c], sink);
          part_count = 0;
        }
        parts[part_count++] = Part{starts[c], entry & CharacterTable::kTokenMask, kNoToken};
        previous_whole = true;
      }
    }
    merge_run(piece, parts.data(), part_count, static_cast<std::uint32_t>(length), sink);
    return true;
  }

 private:
  struct Part {
    std::uint32_t start;
    TokenId token;
    TokenId pair_rank;  // of this part joined with the next one
  };

  // The tokens of a character that merges alone to 2-3 tokens (2- or 3-byte).
  template <class Sink>
  void emit_split(const unsigned char* b, std::size_t length, Sink& sink) const {
    if (length == 2) {
      sink(vocab_->rank_of_byte(b[0]));
      sink(vocab_->rank_of_byte(b[1]));
      return;
    }
    const TokenId first_pair = vocab_->rank_of_byte_pair(b[0], b[1]);
    const TokenId second_pair = vocab_->rank_of_byte_pair(b[1], b[2]);
    if (first_pair != kNoToken && first_pair < second_pair) {
      sink(first_pair);
      sink(vocab_->rank_of_byte(b[2]));
    } else if (second_pair != kNoToken) {
      sink(vocab_->rank_of_byte(b[0]));
      sink(second_pair);
    } else {
      for (std::size_t i = 0; i < 3; ++i) sink(vocab_->rank_of_byte(b[i]));
    }
  }

  // Characters beyond U+FFFF (not in the table) are merged as bytes, and so are their
  // neighbours where a ragged token may join them (every boundary flag set).
  static constexpr std::uint32_t kBeyondTable =
      CharacterTable::kUnsupported | (0xfu << CharacterTable::kBeforeTrailingPartBit);

  // Merges `count` parts (characters and bytes) ending at `end`: tiktoken's short-piece
  // scan (bpe.hpp, merge_short) over characters instead of bytes.
  template <class Sink>
  void merge_run(const char* piece, Part* parts, std::size_t count, std::uint32_t end, Sink& sink) const {
    auto part_end = [&](std::size_t i) { return i + 1 < count ? parts[i + 1].start : end; };
    auto pair_rank = [&](std::size_t i) {
      if (i + 1 >= count) return kNoToken;
      const std::uint32_t length = part_end(i + 1) - parts[i].start;
      const auto* first = reinterpret_cast<const unsigned char*>(piece) + parts[i].start;
      return length == 2 ? vocab_->rank_of_byte_pair(first[0], first[1])
                         : vocab_->rank_of_joined(piece, parts[i].start, parts[i + 1].start, part_end(i + 1));
    };
    for (std::size_t i = 0; i + 1 < count; ++i) parts[i].pair_rank = pair_rank(i);
    while (count > 1) {
      // The lowest rank, leftmost on ties, without a branch per part.
      std::uint64_t best_key = std::uint64_t{parts[0].pair_rank} << 32;
      for (std::size_t i = 1; i + 1 < count; ++i) best_key = std::min(best_key, (std::uint64_t{parts[i].pair_rank} << 32) | i);
      const auto best = static_cast<std::size_t>(static_cast<std::uint32_t>(best_key));
      if (parts[best].pair_rank == kNoToken) break;
      parts[best].token = parts[best].pair_rank;
      std::memmove(&parts[best + 1], &parts[best + 2], (count - best - 2) * sizeof(Part));
      --count;
      parts[best].pair_rank = pair_rank(best);
      if (best > 0) parts[best - 1].pair_rank = pair_rank(best - 1);
    }
    for (std::size_t i = 0; i < count; ++i) sink(parts[i].token);
  }

  const Vocabulary* vocab_;
  const CharacterTable* table_;
};

}  // namespace turnout::tokenizer
