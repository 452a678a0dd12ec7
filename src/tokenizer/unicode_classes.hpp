#pragma once
// The character classes tiktoken's pre-tokenization regexes are written in, for any code
// point. The table behind unicode_class_of() is generated (scripts/gen-unicode-tables.mjs)
// to match the Unicode version of the reference (16.0), which is newer than the one in
// Debian's utf8proc/ICU.
#include <array>
#include <cstdint>

namespace turnout::tokenizer {

// General-category groups that the regexes distinguish. Values are fixed: the generated
// table stores them.
enum class UnicodeClass : std::uint8_t {
  other = 0,
  uppercase_letter = 1,  // Lu
  lowercase_letter = 2,  // Ll
  titlecase_letter = 3,  // Lt
  modifier_letter = 4,   // Lm
  other_letter = 5,      // Lo
  mark = 6,              // M (Mn, Mc, Me)
  number = 7,            // N (Nd, Nl, No)
  white_space = 8,       // White_Space property (the regex crate's \s)
};

UnicodeClass unicode_class_of(char32_t code_point);

// Membership bits, one per character class used in the patterns.
namespace char_flag {
inline constexpr std::uint8_t letter = 1 << 0;       // \p{L}
inline constexpr std::uint8_t number = 1 << 1;       // \p{N}
inline constexpr std::uint8_t space = 1 << 2;        // \s
inline constexpr std::uint8_t newline = 1 << 3;      // [\r\n]
inline constexpr std::uint8_t upper_run = 1 << 4;    // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] (o200k)
inline constexpr std::uint8_t lower_run = 1 << 5;    // [\p{Ll}\p{Lm}\p{Lo}\p{M}] (o200k)
inline constexpr std::uint8_t slash = 1 << 6;        // '/', which o200k lets trail punctuation
inline constexpr std::uint8_t apostrophe = 1 << 7;   // ' (contractions)
}  // namespace char_flag

constexpr std::uint8_t flags_of_class(UnicodeClass cls) {
  using namespace char_flag;
  switch (cls) {
    case UnicodeClass::uppercase_letter:
    case UnicodeClass::titlecase_letter: return letter | upper_run;
    case UnicodeClass::lowercase_letter: return letter | lower_run;
    case UnicodeClass::modifier_letter:
    case UnicodeClass::other_letter: return letter | upper_run | lower_run;
    case UnicodeClass::mark: return upper_run | lower_run;
    case UnicodeClass::number: return number;
    case UnicodeClass::white_space: return space;
    case UnicodeClass::other: return 0;
  }
  return 0;
}

namespace detail {
constexpr std::array<std::uint8_t, 128> make_ascii_flags() {
  std::array<std::uint8_t, 128> flags{};
  for (int c = 'A'; c <= 'Z'; ++c) flags[c] = flags_of_class(UnicodeClass::uppercase_letter);
  for (int c = 'a'; c <= 'z'; ++c) flags[c] = flags_of_class(UnicodeClass::lowercase_letter);
  for (int c = '0'; c <= '9'; ++c) flags[c] = flags_of_class(UnicodeClass::number);
  for (int c : {'\t', '\n', '\v', '\f', '\r', ' '}) flags[c] = char_flag::space;
  flags['\r'] |= char_flag::newline;
  flags['\n'] |= char_flag::newline;
  flags['/'] = char_flag::slash;
  flags['\''] = char_flag::apostrophe;
  return flags;
}
inline constexpr std::array<std::uint8_t, 128> kAsciiFlags = make_ascii_flags();
}  // namespace detail

namespace detail {
// The flags of U+0000..U+1FFF, one byte each (8 KB, which stays in L1 while a text in
// these scripts is scanned): every two-byte character (Latin, Greek, Cyrillic, Armenian,
// Hebrew, Arabic, ...) and the three-byte ones of the Indic, Thai, Lao, Tibetan, Myanmar,
// Georgian, Hangul Jamo and Ethiopic blocks. For these the scan of a run of letters reads
// one byte per character instead of calling unicode_class_of (two dependent table reads
// and a switch). Filled from unicode_class_of once, at start-up (static initialization:
// nothing tokenizes before main).
inline constexpr char32_t kDirectFlagsEnd = 0x2000;
std::array<std::uint8_t, kDirectFlagsEnd> make_direct_flags();
inline const std::array<std::uint8_t, kDirectFlagsEnd> kDirectFlags = make_direct_flags();
}  // namespace detail

inline std::uint8_t char_flags(char32_t code_point) {
  if (code_point < detail::kDirectFlagsEnd) return detail::kDirectFlags[code_point];
  // U+FFFD (So) is what every invalid byte became: in binary data read as text, most
  // characters outside ASCII.
  if (code_point == 0xfffd) return 0;
  return flags_of_class(unicode_class_of(code_point));
}

}  // namespace turnout::tokenizer
