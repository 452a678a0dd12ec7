#pragma once
// Pre-tokenization: splitting valid UTF-8 text into the pieces that tiktoken's regexes
// would match, without a regex engine. Each scanner returns the end of the piece that
// starts at `p`; the alternatives are tried in the order of the pattern, with the same
// backtracking outcome as the reference's leftmost-first regex engine. Pieces of ASCII
// words, digits, punctuation and whitespace runs (nearly all of English and code) take
// shorter fast paths first (fast_piece_end), 16 bytes at a time where it pays.
//
// cl100k_base:
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
//   | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// o200k_base:
//   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//   |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//   |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
// (the patterns of the npm `tiktoken` package the golden tests come from).
#include "tokenizer/unicode_classes.hpp"
#include "tokenizer/utf8.hpp"

#include <bit>
#include <cstdint>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace turnout::tokenizer {

using BytePtr = const unsigned char*;

namespace scan {

struct CharInfo {
  std::uint8_t flags;
  unsigned length;
};

inline CharInfo char_info(BytePtr p) {
  if (*p < 0x80) return {detail::kAsciiFlags[*p], 1};
  const DecodedChar decoded = decode_valid_utf8(p);
  return {char_flags(decoded.code_point), decoded.length};
}

inline bool has_flag(BytePtr p, BytePtr end, std::uint8_t flags) {
  return p < end && (char_info(p).flags & flags) != 0;
}

// Advances over characters that have any of `flags`.
inline BytePtr skip_with(BytePtr p, BytePtr end, std::uint8_t flags) {
  while (p < end) {
    if (*p < 0x80) {
      if ((detail::kAsciiFlags[*p] & flags) == 0) break;
      ++p;
      continue;
    }
    const CharInfo info = char_info(p);
    if ((info.flags & flags) == 0) break;
    p += info.length;
  }
  return p;
}

// Advances over characters that have none of `flags`.
inline BytePtr skip_without(BytePtr p, BytePtr end, std::uint8_t flags) {
  while (p < end) {
    const CharInfo info = char_info(p);
    if ((info.flags & flags) != 0) break;
    p += info.length;
  }
  return p;
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d) at `p`: the end of the contraction, or nullptr. Case
// folding is Unicode's, so "'ſ" (U+017F LATIN SMALL LETTER LONG S) counts as "'s".
inline BytePtr contraction_end(BytePtr p, BytePtr end) {
  if (end - p < 2 || p[0] != '\'') return nullptr;
  if (p[1] == 0xc5 && end - p >= 3 && p[2] == 0xbf) return p + 3;  // U+017F
  const unsigned first = p[1] | 0x20u;                                // ASCII lower case
  if (first == 's' || first == 't' || first == 'm' || first == 'd') return p + 2;
  if (end - p < 3) return nullptr;
  const unsigned second = p[2] | 0x20u;
  if ((first == 'r' || first == 'v') && second == 'e') return p + 3;
  if (first == 'l' && second == 'l') return p + 3;
  return nullptr;
}

inline BytePtr with_optional_contraction(BytePtr p, BytePtr end) {
  BytePtr contraction = contraction_end(p, end);
  return contraction ? contraction : p;
}

// \p{N}{1,3}
inline BytePtr numbers_end(BytePtr p, BytePtr end) {
  for (int i = 0; i < 3 && p < end; ++i) {
    const CharInfo info = char_info(p);
    if ((info.flags & char_flag::number) == 0) break;
    p += info.length;
  }
  return p;
}

// \s, \p{L} and \p{N}: what punctuation runs ([^\s\p{L}\p{N}]+) stop at.
inline constexpr std::uint8_t kWordOrSpace = char_flag::space | char_flag::letter | char_flag::number;

// ` ?[^\s\p{L}\p{N}]+` followed by `trailing_flags`*: the end, or nullptr.
inline BytePtr punctuation_end(BytePtr p, BytePtr end, std::uint8_t trailing_flags) {
  BytePtr q = *p == ' ' ? p + 1 : p;
  if (q >= end || (char_info(q).flags & kWordOrSpace) != 0) return nullptr;
  q = skip_without(q, end, kWordOrSpace);
  return skip_with(q, end, trailing_flags);
}

// `\s*[\r\n]+|\s+(?!\S)|\s+` at whitespace `p`.
inline BytePtr whitespace_end(BytePtr p, BytePtr end) {
  BytePtr last_newline_end = nullptr;
  BytePtr last_char = p;
  BytePtr q = p;
  while (q < end) {
    const CharInfo info = char_info(q);
    if ((info.flags & char_flag::space) == 0) break;
    if (info.flags & char_flag::newline) last_newline_end = q + info.length;
    last_char = q;
    q += info.length;
  }
  if (last_newline_end) return last_newline_end;  // \s*[\r\n]+ backtracks to the last newline
  if (q == end) return q;                         // \s+(?!\S) at the end of the text
  if (last_char > p) return last_char;            // \s+(?!\S) leaves one for the next word
  return q;                                       // \s+
}

// Whether the character at `p` is in [^\r\n\p{L}\p{N}], the optional word prefix.
inline bool is_word_prefix(CharInfo info) {
  return (info.flags & (char_flag::letter | char_flag::number | char_flag::newline)) == 0;
}

// Advances over ASCII characters that have any of `flags`; stops at any other byte.
inline BytePtr skip_ascii_with(BytePtr p, BytePtr end, std::uint8_t flags) {
  while (p < end && *p < 0x80 && (detail::kAsciiFlags[*p] & flags) != 0) ++p;
  return p;
}

#if defined(__SSE2__)
// Bit i set where p[i] (of 16 bytes) is in [first, first + 25]: an ASCII letter range.
inline unsigned ascii_range_mask(__m128i bytes, char first) {
  const __m128i offset = _mm_sub_epi8(bytes, _mm_set1_epi8(first));
  const __m128i in_range = _mm_cmpeq_epi8(_mm_subs_epu8(offset, _mm_set1_epi8(25)), _mm_setzero_si128());
  return static_cast<unsigned>(_mm_movemask_epi8(in_range));
}
#endif

// The end of a run of ASCII upper-case letters followed by a run of ASCII lower-case
// ones (either may be empty; with `any_case`, one run of letters of either case): the
// runs of a word, found 16 bytes at a time where 16 remain (no branch per letter: where a
// word ends is what a predictor cannot guess), byte by byte otherwise.
inline BytePtr ascii_letters_end(BytePtr p, BytePtr end, bool any_case) {
#if defined(__SSE2__)
  while (end - p >= 16) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    if (any_case) {
      const unsigned letters = ascii_range_mask(_mm_or_si128(bytes, _mm_set1_epi8(0x20)), 'a');
      const unsigned run = static_cast<unsigned>(std::countr_one(letters));
      if (run < 16) return p + run;
      p += 16;
      continue;
    }
    const unsigned upper = ascii_range_mask(bytes, 'A');
    const unsigned upper_run = static_cast<unsigned>(std::countr_one(upper));
    const unsigned lower_run = static_cast<unsigned>(std::countr_one(ascii_range_mask(bytes, 'a') >> upper_run));
    if (upper_run + lower_run < 16) return p + upper_run + lower_run;
    if (lower_run == 0) {  // 16 upper-case letters: the upper run goes on
      p += 16;
      continue;
    }
    // The lower run reaches the end of the block: only lower-case letters can follow.
    return skip_ascii_with(p + 16, end, char_flag::lower_run);
  }
#endif
  if (any_case) return skip_ascii_with(p, end, char_flag::letter);
  return skip_ascii_with(skip_ascii_with(p, end, char_flag::upper_run), end, char_flag::lower_run);
}

// `\s*[\r\n]+|\s+(?!\S)|\s+` at `p`, which starts a run of at least two ASCII whitespace
// characters (which no other alternative of either pattern can match): found 16 bytes at
// a time where 16 remain. nullptr when the run is followed by a non-ASCII character
// (which may be whitespace too), for the general path.
inline BytePtr ascii_whitespace_run_end(BytePtr p, BytePtr end) {
  auto is_space = [](unsigned char c) { return c < 0x80 && (detail::kAsciiFlags[c] & char_flag::space) != 0; };
  BytePtr q = p;
  BytePtr last_newline = nullptr;
#if defined(__SSE2__)
  while (end - q >= 16) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    // [\t\n\v\f\r ], the ASCII whitespace: a space, or 9..13 (a saturated difference of 0).
    const __m128i controls = _mm_subs_epu8(_mm_sub_epi8(bytes, _mm_set1_epi8('\t')), _mm_set1_epi8('\r' - '\t'));
    const __m128i spaces = _mm_or_si128(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(' ')), _mm_cmpeq_epi8(controls, _mm_setzero_si128()));
    const __m128i newlines = _mm_or_si128(_mm_cmpeq_epi8(bytes, _mm_set1_epi8('\n')), _mm_cmpeq_epi8(bytes, _mm_set1_epi8('\r')));
    const auto run = static_cast<unsigned>(std::countr_one(static_cast<unsigned>(_mm_movemask_epi8(spaces))));
    const unsigned newline_bits = static_cast<unsigned>(_mm_movemask_epi8(newlines)) & ((1u << run) - 1);
    if (newline_bits != 0) last_newline = q + (31 - std::countl_zero(newline_bits));
    q += run;
    if (run < 16) break;
  }
#endif
  for (; q < end && is_space(*q); ++q) {  // the rest of a run near the end of the text
    if (*q == '\n' || *q == '\r') last_newline = q;
  }
  if (q < end && *q >= 0x80) return nullptr;
  if (last_newline != nullptr) return last_newline + 1;  // \s*[\r\n]+ backtracks to the last newline
  if (q == end) return q;                               // \s+(?!\S) at the end of the text
  return q - 1;                                         // \s+(?!\S) leaves one for the next word
}

// U+FFFD REPLACEMENT CHARACTER (So: punctuation to both patterns), what the repair of
// invalid UTF-8 leaves.
inline bool is_replacement_character(BytePtr p, BytePtr end) {
  return end - p >= 3 && p[0] == 0xef && p[1] == 0xbf && p[2] == 0xbd;
}

// \p{N}{1,3} at `p`, an ASCII digit, for the common case of ASCII digits only: nullptr
// when fewer than three are followed by a non-ASCII character that may be a number
// (U+FFFD, after digits all the time in binary data read as text, is none).
inline BytePtr ascii_digits_end(BytePtr p, BytePtr end) {
  auto is_digit = [](unsigned char c) { return c >= '0' && c <= '9'; };
  BytePtr q = p + 1;
  if (q < end && is_digit(*q)) ++q;
  if (q < end && is_digit(*q)) ++q;
  if (q - p < 3 && q < end && *q >= 0x80 && !is_replacement_character(q, end)) return nullptr;
  return q;
}

// The pieces the scanners have a fast path for.
enum class AsciiStart : std::uint8_t {
  other,
  word,             // at most one ASCII character that may prefix a word, then an ASCII letter
  whitespace_run,   // two or more ASCII whitespace characters
  digit,            // an ASCII digit (no word starts with one, in either pattern)
  punctuation,      // ` ?[^\s\p{L}\p{N}]+` starting with ASCII, where no word starts
};

// Which fast path a piece at `p` can take, from its first bytes (up to four: U+FFFD after
// a prefix); for a word, sets `letters` to where its letters start.
inline AsciiStart ascii_start(BytePtr p, BytePtr end, BytePtr& letters) {
  if (*p >= 0x80) return AsciiStart::other;
  const std::uint8_t first = detail::kAsciiFlags[*p];
  if ((first & char_flag::letter) != 0) {
    letters = p;
    return AsciiStart::word;
  }
  if ((first & char_flag::number) != 0) return AsciiStart::digit;
  if (end - p < 2) return AsciiStart::other;
  if (p[1] >= 0x80) {
    // A U+FFFD (no letter) after a space or ASCII punctuation: a punctuation run, the
    // usual piece of binary data read as text.
    const bool may_start_punctuation = (first & kWordOrSpace) == 0 || *p == ' ';
    return may_start_punctuation && is_replacement_character(p + 1, end) ? AsciiStart::punctuation : AsciiStart::other;
  }
  const std::uint8_t second = detail::kAsciiFlags[p[1]];
  if ((second & char_flag::letter) != 0 && (first & char_flag::newline) == 0) {
    letters = p + 1;
    return AsciiStart::word;
  }
  if ((first & second & char_flag::space) != 0) return AsciiStart::whitespace_run;
  if ((first & kWordOrSpace) == 0 || (*p == ' ' && (second & kWordOrSpace) == 0)) return AsciiStart::punctuation;
  return AsciiStart::other;
}

// ` ?[^\s\p{L}\p{N}]+` then `trailing`* at `p` (AsciiStart::punctuation). A non-ASCII
// character in the run is classified one at a time: the piece's second byte is ASCII and
// no letter, so no word alternative matches here and only the run's extent is in question
// (binary data read as text puts U+FFFD among ASCII punctuation all the time).
// `trailing` is [\r\n] (cl100k) or [\r\n/] (o200k).
inline BytePtr ascii_punctuation_end(BytePtr p, BytePtr end, std::uint8_t trailing) {
  BytePtr q = *p == ' ' ? p + 1 : p;
  while (q < end && *q < 0x80 && (detail::kAsciiFlags[*q] & kWordOrSpace) == 0) ++q;
  if (q < end && *q >= 0x80) q = skip_without(q, end, kWordOrSpace);
  while (q < end && *q < 0x80 && (detail::kAsciiFlags[*q] & trailing) != 0) ++q;
  return q;
}

// ` ?[^\s\p{L}\p{N}]+` then `trailing`* at `p`, a U+FFFD followed by the end of the text,
// another U+FFFD or an ASCII character that is no letter (so no word starts at `p`), for
// binary data read as text; nullptr otherwise.
inline BytePtr replacement_punctuation_end(BytePtr p, BytePtr end, std::uint8_t trailing) {
  const BytePtr next = p + 3;
  if (next < end && !is_replacement_character(next, end) &&
      (*next >= 0x80 || (detail::kAsciiFlags[*next] & char_flag::letter) != 0)) {
    return nullptr;
  }
  return skip_with(skip_without(next, end, kWordOrSpace), end, trailing);
}

// Whether `p` is an ASCII letter (and not the end of the text).
inline bool is_ascii_letter(BytePtr p, BytePtr end) {
  return p < end && *p < 0x80 && (detail::kAsciiFlags[*p] & char_flag::letter) != 0;
}

}  // namespace scan

// The fast paths both scanners share, for pieces that start with ASCII (see AsciiStart):
// the end of the piece at `p`, or nullptr for the general path. `Scanner` supplies what
// differs: its word rule over ASCII letters, the characters that may trail punctuation,
// and prefixed_word_end (an ASCII prefix before a non-ASCII letter; cl100k only).
// Always inlined: as a call it cost 10% of the scan time of code.
namespace scan {
template <class Scanner>
[[gnu::always_inline]] inline BytePtr fast_piece_end(BytePtr p, BytePtr end) {
  BytePtr letters = nullptr;
  switch (ascii_start(p, end, letters)) {
    case AsciiStart::word: return Scanner::ascii_word_end(letters, end);
    case AsciiStart::whitespace_run: return ascii_whitespace_run_end(p, end);
    case AsciiStart::digit: return ascii_digits_end(p, end);
    case AsciiStart::punctuation: return ascii_punctuation_end(p, end, Scanner::kTrailingPunctuation);
    case AsciiStart::other:
      if (is_replacement_character(p, end)) {
        // U+FFFD, like any punctuation, may prefix a word ([^\r\n\p{L}\p{N}]).
        if (is_ascii_letter(p + 3, end)) return Scanner::ascii_word_end(p + 3, end);
        return replacement_punctuation_end(p, end, Scanner::kTrailingPunctuation);
      }
      if (*p < 0x80 && end - p >= 2) return Scanner::prefixed_word_end(p, end);
      break;
  }
  return nullptr;
}
}  // namespace scan

struct Cl100kScanner {
  static BytePtr piece_end(BytePtr p, BytePtr end) {
    if (BytePtr contraction = scan::contraction_end(p, end)) return contraction;
    if (BytePtr fast = scan::fast_piece_end<Cl100kScanner>(p, end)) return fast;
    return general_piece_end(p, end);
  }

  // The same without the fast paths (and the reference they are tested against).
  static BytePtr general_piece_end(BytePtr p, BytePtr end) {
    using namespace scan;
    if (BytePtr contraction = contraction_end(p, end)) return contraction;
    const CharInfo first = char_info(p);
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (first.flags & char_flag::letter) return skip_with(p + first.length, end, char_flag::letter);
    if (is_word_prefix(first) && has_flag(p + first.length, end, char_flag::letter)) {
      return skip_with(p + first.length, end, char_flag::letter);
    }
    if (first.flags & char_flag::number) return numbers_end(p, end);
    if (BytePtr punctuation = punctuation_end(p, end, kTrailingPunctuation)) return punctuation;
    return whitespace_end(p, end);
  }

  // For the fast paths: \p{L}+ from `letters`, an ASCII letter; ASCII letters 16 at a time,
  // then any other letters one at a time (binary data read as text puts U+FFFD, no
  // letter, right after words all the time).
  static BytePtr ascii_word_end(BytePtr letters, BytePtr end) {
    const BytePtr word_end = scan::ascii_letters_end(letters, end, true);
    return word_end == end || *word_end < 0x80 ? word_end : scan::skip_with(word_end, end, char_flag::letter);
  }
  // For the fast paths: `[^\r\n\p{L}\p{N}]\p{L}+` at `p`, an ASCII character followed by a
  // non-ASCII one (" для", "(日本"), or nullptr if that is no such word.
  static BytePtr prefixed_word_end(BytePtr p, BytePtr end) {
    using namespace scan;
    if (!is_word_prefix(CharInfo{detail::kAsciiFlags[*p], 1})) return nullptr;
    const CharInfo second = char_info(p + 1);
    if ((second.flags & char_flag::letter) == 0) return nullptr;
    return skip_with(p + 1 + second.length, end, char_flag::letter);
  }
  static constexpr std::uint8_t kTrailingPunctuation = char_flag::newline;  // [\r\n]*
};

struct O200kScanner {
  static BytePtr piece_end(BytePtr p, BytePtr end) {
    if (BytePtr fast = scan::fast_piece_end<O200kScanner>(p, end)) return fast;
    return general_piece_end(p, end);
  }

  // For the fast paths: over ASCII the two word alternatives reduce to [A-Z]*[a-z]+ |
  // [A-Z]+ (no ASCII character is Lt, Lm, Lo or M), then an optional contraction; nullptr
  // if a non-ASCII character (which may continue the word) follows the ASCII letters.
  static BytePtr ascii_word_end(BytePtr letters, BytePtr end) {
    const BytePtr word_end = scan::ascii_letters_end(letters, end, false);
    return word_end == end || *word_end < 0x80 ? scan::with_optional_contraction(word_end, end) : nullptr;
  }
  static constexpr std::uint8_t kTrailingPunctuation = char_flag::newline | char_flag::slash;  // [\r\n/]*
  // o200k's words of non-ASCII letters depend on their case classes: the general path.
  static BytePtr prefixed_word_end(BytePtr, BytePtr) { return nullptr; }

  // The same without the fast paths (and the reference they are tested against).
  static BytePtr general_piece_end(BytePtr p, BytePtr end) {
    using namespace scan;
    const CharInfo first = char_info(p);
    const bool prefixable = is_word_prefix(first);
    if (prefixable) {
      if (BytePtr word = lower_word_end(p + first.length, end)) return word;
    }
    if (BytePtr word = lower_word_end(p, end)) return word;
    if (prefixable) {
      if (BytePtr word = upper_word_end(p + first.length, end)) return word;
    }
    if (BytePtr word = upper_word_end(p, end)) return word;
    if (first.flags & char_flag::number) return numbers_end(p, end);
    if (BytePtr punctuation = punctuation_end(p, end, kTrailingPunctuation)) return punctuation;
    return whitespace_end(p, end);
  }

 private:
  // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|...)? at `s`, or
  // nullptr. The two classes overlap (Lm, Lo, M), so when the upper run is not followed
  // by a lower-case character the regex backtracks to the last overlapping character.
  static BytePtr lower_word_end(BytePtr s, BytePtr end) {
    using namespace scan;
    BytePtr q = s;
    BytePtr last_lower_end = nullptr;
    while (q < end) {
      const CharInfo info = char_info(q);
      if ((info.flags & char_flag::upper_run) == 0) break;
      q += info.length;
      if (info.flags & char_flag::lower_run) last_lower_end = q;
    }
    if (has_flag(q, end, char_flag::lower_run)) {
      return with_optional_contraction(skip_with(q, end, char_flag::lower_run), end);
    }
    if (last_lower_end) return with_optional_contraction(last_lower_end, end);
    return nullptr;
  }

  // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|...)? at `s`, or nullptr.
  static BytePtr upper_word_end(BytePtr s, BytePtr end) {
    using namespace scan;
    if (!has_flag(s, end, char_flag::upper_run)) return nullptr;
    BytePtr q = skip_with(s, end, char_flag::upper_run);
    return with_optional_contraction(skip_with(q, end, char_flag::lower_run), end);
  }
};

}  // namespace turnout::tokenizer
