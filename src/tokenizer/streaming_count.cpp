#include "tokenizer/streaming_count.hpp"

#include "common/utf8.hpp"
#include "tokenizer/pretokenizer.hpp"

#include <algorithm>
#include <array>

namespace turnout::tokenizer {
namespace {

// How many trailing pieces text appended later may still change. A piece's end depends on
// what follows it through lookahead and backtracking: `\s+(?!\S)` gives back its last
// space to a following word; o200k's words take a following contraction ("Hello" + "'" +
// "r" become "Hello're" once "e" arrives: three pieces into one). Four is a margin over
// the three that are known to merge; the tests check the count against the whole text.
constexpr std::size_t kUnsettledPieces = 4;

// Pending text is scanned for a cut once it reaches this size, then again once it has
// doubled since: scanning stays linear in the text even when one piece is very long.
constexpr std::size_t kMinCutBytes = 1024;

template <class Scanner>
SettledPieces settled_pieces(const Encoding& encoding, std::string_view text) {
  std::array<std::size_t, kUnsettledPieces> starts{};  // ring of the last pieces' starts
  std::size_t pieces = 0;
  const auto* begin = reinterpret_cast<BytePtr>(text.data());
  const auto* end = begin + text.size();
  for (BytePtr p = begin; p < end; p = Scanner::piece_end(p, end))
    starts[pieces++ % kUnsettledPieces] = static_cast<std::size_t>(p - begin);
  if (pieces <= kUnsettledPieces) return {};
  SettledPieces settled;
  settled.bytes = starts[pieces % kUnsettledPieces];  // the start of the kUnsettledPieces-th last piece
  for (BytePtr p = begin; p < begin + settled.bytes;) {
    const BytePtr piece_end = Scanner::piece_end(p, end);
    settled.tokens += encoding.count(std::string_view(reinterpret_cast<const char*>(p), static_cast<std::size_t>(piece_end - p)));
    p = piece_end;
  }
  return settled;
}

}  // namespace

SettledPieces count_settled_pieces(EncodingId encoding, std::string_view text) {
  if (!is_valid_utf8(text)) return {};
  const Encoding& counter = Encoding::get(encoding);
  return encoding == EncodingId::o200k_base ? settled_pieces<O200kScanner>(counter, text)
                                            : settled_pieces<Cl100kScanner>(counter, text);
}

void StreamingCount::append(std::string_view text) {
  pending_.append(text);
  if (pending_.size() < std::max(cut_threshold_, kMinCutBytes)) return;
  const SettledPieces settled = count_settled_pieces(encoding_, pending_);
  counted_ += settled.tokens;
  pending_.erase(0, settled.bytes);
  cut_threshold_ = 2 * pending_.size();
}

std::uint64_t StreamingCount::total() const { return counted_ + Encoding::get(encoding_).count(pending_); }

}  // namespace turnout::tokenizer
