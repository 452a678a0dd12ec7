#pragma once
// Counting the tokens of a text that arrives a little at a time (a streamed completion)
// without keeping it: tokens never cross a pre-tokenization piece boundary, so the pieces
// that no continuation can change are counted as soon as they are known and dropped.
// Only the last few pieces are kept, so memory is bounded by the longest piece, not the
// text; the total is exactly count() of the whole text.
#include "tokenizer/tokenizer.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace turnout::tokenizer {

class StreamingCount {
 public:
  explicit StreamingCount(EncodingId encoding) : encoding_(encoding) {}

  void append(std::string_view text);
  // Tokens of everything appended so far.
  std::uint64_t total() const;
  // Bytes held back (for tests: stays small however much is appended).
  std::size_t pending_bytes() const { return pending_.size(); }

 private:
  EncodingId encoding_;
  std::string pending_;         // the text after the last cut: its pieces may still change
  std::uint64_t counted_ = 0;   // tokens of the text before the last cut
  std::size_t cut_threshold_ = 0;  // pending_ size at which to look for the next cut
};

// The leading pieces of valid UTF-8 `text` that no text appended later can change: their
// length in bytes and their tokens. Each piece is counted as the scan of the whole text
// delimits it: the prefix alone would be delimited differently at its end ("  " then "4"
// is two pieces, " " and " 4"... and "  " alone is one). {0, 0} for invalid UTF-8.
struct SettledPieces {
  std::size_t bytes = 0;
  std::uint64_t tokens = 0;
};
SettledPieces count_settled_pieces(EncodingId encoding, std::string_view text);

}  // namespace turnout::tokenizer
