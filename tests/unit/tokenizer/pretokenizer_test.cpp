// The scanners' ASCII word fast path (16 bytes at a time where 16 remain) must split text
// exactly as their general path does, which the golden tests check against tiktoken. The
// cases that matter: words whose letter runs end at, just before and just after the
// 16-byte blocks, upper-case runs that fill a block, lower-case runs that reach a block's
// end, text that ends inside or right after a word, and non-ASCII letters or marks (which
// may continue a word) right after the ASCII letters.
#include "tokenizer/pretokenizer.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace {

using turnout::tokenizer::BytePtr;
using turnout::tokenizer::Cl100kScanner;
using turnout::tokenizer::O200kScanner;

// Splits `text` with Scanner::piece_end and checks every piece against general_piece_end.
template <class Scanner>
void expect_same_pieces(const std::string& text) {
  const auto* p = reinterpret_cast<BytePtr>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const BytePtr fast = Scanner::piece_end(p, end);
    const BytePtr general = Scanner::general_piece_end(p, end);
    ASSERT_EQ(fast - p, general - p) << "at byte " << (p - reinterpret_cast<BytePtr>(text.data())) << " of \""
                                     << text << "\"";
    p = general;
  }
}

void expect_same_pieces_both(const std::string& text) {
  expect_same_pieces<Cl100kScanner>(text);
  expect_same_pieces<O200kScanner>(text);
}

// Checks `texts` random concatenations of 1 to `max_units` of `units`.
void expect_random_mixes_split_alike(const std::vector<std::string>& units, unsigned seed, int texts, int max_units) {
  std::mt19937 random(seed);
  for (int i = 0; i < texts; ++i) {
    std::string text;
    const int count = 1 + static_cast<int>(random() % static_cast<unsigned>(max_units));
    for (int j = 0; j < count; ++j) text += units[random() % units.size()];
    expect_same_pieces_both(text);
  }
}

// Checks prefix + middle + suffix for every prefix and suffix; returns how many texts.
std::size_t expect_same_pieces_around(const std::vector<std::string>& prefixes, const std::string& middle,
                                      const std::vector<std::string>& suffixes) {
  for (const std::string& prefix : prefixes) {
    for (const std::string& suffix : suffixes) expect_same_pieces_both(prefix + middle + suffix);
  }
  return prefixes.size() * suffixes.size();
}

TEST(Pretokenizer, AsciiWordFastPathSplitsAsTheGeneralScanner) {
  const std::vector<std::string> prefixes = {"", " ", "'", "(", "\n", "1", "\xc3\xa9" /* é */, "  "};
  const std::vector<std::string> suffixes = {"", " ", "'s", "'LL", "'x", ".", "1", "\n", "\xc3\xa9" /* é */,
                                             "\xcc\x81" /* combining acute */, "\xca\xb0" /* ʰ (Lm) */,
                                             "\xd7\x90" /* א (Lo) */, "\xc3\x89" /* É */, "A", "b"};
  std::vector<std::string> suffixes_then_text;
  for (const std::string& suffix : suffixes) suffixes_then_text.push_back(suffix + " tail of the text, long enough");
  std::size_t checked = 0;
  for (std::size_t upper = 0; upper <= 34; ++upper) {
    for (std::size_t lower = 0; lower <= 34; lower += (lower < 18 ? 1 : 8)) {
      if (upper + lower == 0) continue;
      const std::string word = std::string(upper, 'Q') + std::string(lower, 'x');
      checked += expect_same_pieces_around(prefixes, word, suffixes);
      checked += expect_same_pieces_around(prefixes, word, suffixes_then_text);
    }
  }
  EXPECT_GT(checked, 10000u);
}

// Runs of ASCII whitespace (the fast path for two or more) of every length around the
// 16-byte blocks, with newlines at every position, before words, punctuation, Unicode
// whitespace (U+00A0, U+0085, U+3000) and the end of the text.
TEST(Pretokenizer, AsciiWhitespaceFastPathSplitsAsTheGeneralScanner) {
  const std::vector<std::string> before = {"", "x", "x.", "\xc2\xa0"};
  const std::vector<std::string> after = {"", "x", "X", ".", "(", "1", "'s", "\xc2\xa0" /* U+00A0 */,
                                          "\xc2\x85" /* U+0085 */, "\xe3\x80\x80" /* U+3000 */, "\xc3\xa9"};
  std::size_t checked = 0;
  for (std::size_t length = 2; length <= 40; ++length) {
    for (std::size_t newline_at = 0; newline_at <= length; newline_at += (length < 20 ? 1 : 7)) {
      for (const char* space : {" ", "\t", " \r"}) {
        std::string run;
        while (run.size() < length) run += space;
        run.resize(length);
        if (newline_at < length) run[newline_at] = '\n';
        checked += expect_same_pieces_around(before, run, after);
      }
    }
  }
  EXPECT_GT(checked, 10000u);
}

// Digits: groups of one to three, followed by ASCII, the end of the text, or non-ASCII
// numbers (Arabic-Indic three, superscript two, Roman numeral twelve) and letters.
TEST(Pretokenizer, AsciiDigitFastPathSplitsAsTheGeneralScanner) {
  const std::vector<std::string> prefixes = {"", " ", "a", "\xd9\xa3"};
  const std::vector<std::string> suffixes = {"", " ", "x", "\xd9\xa3", "\xc2\xb2", "\xe2\x85\xab", "\xc3\xa9"};
  for (std::size_t digits = 1; digits <= 8; ++digits) {
    expect_same_pieces_around(prefixes, std::string("1234567890").substr(0, digits), suffixes);
  }
}

// Punctuation runs (with and without a leading space) of every length, then newlines and
// slashes (which o200k lets trail), letters, digits, spaces, non-ASCII punctuation (an em
// dash), non-ASCII letters and the end of the text; and the apostrophe, which also starts
// contractions.
TEST(Pretokenizer, AsciiPunctuationFastPathSplitsAsTheGeneralScanner) {
  const std::vector<std::string> runs = {".", "(", ");", "...", "=>", "'", "''", "*/", "//", "#!", "\"", "{[(<>)]}", "-_-"};
  const std::vector<std::string> after = {"", "x", "X", "1", " ", "  ", "\n", "\r\n", "\n/", "/\n", "\n\n/x",
                                          "\xe2\x80\x94" /* em dash */, "\xc3\xa9", "'s", "s"};
  const std::vector<std::string> prefixes = {"", " ", "a", "  ", "\t"};
  std::size_t checked = 0;
  for (const std::string& run : runs) checked += expect_same_pieces_around(prefixes, run, after);
  EXPECT_GT(checked, 900u);
}

TEST(Pretokenizer, RandomMixedTextSplitsAsTheGeneralScanner) {
  const std::vector<std::string> units = {"a", "b", "Z", "Q", " ", "'", "'s", "1", "\n", "-", "\xc3\xa9", "\xc3\x89",
                                          "\xcc\x81", "\xca\xb0", "\xd7\x90", "\xe6\x97\xa5", "camelCase", "HTTPServer",
                                          "abcdefghijklmnop", "ABCDEFGHIJKLMNOP", "  ", "\t", "\r\n", "        ",
                                          "\xc2\xa0", "\xc2\x85", "12", "7", "\xd9\xa3", ".", "(", ")", ";", "/", "\xe2\x80\x94"};
  expect_random_mixes_split_alike(units, 12345, 20000, 24);
}

// U+FFFD, what the repair of invalid UTF-8 leaves, is punctuation with its own fast path,
// and ASCII punctuation runs go on through non-ASCII characters: random mixes of it with
// ASCII punctuation, letters (which a U+FFFD or punctuation may prefix), digits, spaces,
// newlines, slashes, non-ASCII letters, marks, digits, spaces and punctuation, and the
// end of the text right after each.
TEST(Pretokenizer, ReplacementCharacterAndPunctuationRunsSplitAsTheGeneralScanner) {
  const std::vector<std::string> units = {
      "\xef\xbf\xbd", "\xef\xbf\xbd", "\xef\xbf\xbd", ".", "#", "'", "'s", "/", "a", "Z", "1", " ", "  ", "\n", "\r",
      "\xc3\xa9", "\xc3\x89", "\xcc\x81", "\xca\xb0", "\xd9\xa3", "\xc2\xa0", "\xe2\x80\x94", "\xe6\x97\xa5",
      "\xef\xbf\xbc" /* U+FFFC, one code point below */, "\xef\xbc\xa1" /* fullwidth A */,
      "\xef\xbf\x9a" /* U+FFDA, a letter sharing U+FFFD's first two bytes */, "\xf0\x9f\x98\x80" /* emoji */,
      "\xf0\xa0\x80\x80" /* U+20000, a 4-byte letter */, "\xf0\x9d\x9f\x8e" /* U+1D7CE, a 4-byte digit */,
      "\xe3\x80\x80" /* U+3000, a space */};
  expect_random_mixes_split_alike(units, 2207, 40000, 12);
}

// The random test above compares the fast paths with the general one, so it would pass
// with them switched off. These pieces must take them (issue 22's speed), and end where
// the pattern does; the ones marked -1 must leave them (a word or a number may go on).
TEST(Pretokenizer, BinaryTextTakesTheFastPunctuationPaths) {
  const auto fast_length = [](const std::string& text, auto scanner) -> std::ptrdiff_t {
    const auto* p = reinterpret_cast<BytePtr>(text.data());
    const BytePtr end = turnout::tokenizer::scan::fast_piece_end<decltype(scanner)>(p, p + text.size());
    return end == nullptr ? -1 : end - p;
  };
  const std::string fffd = "\xef\xbf\xbd";
  struct Case {
    std::string text;
    std::ptrdiff_t cl100k, o200k;  // the piece's length on the fast path; -1: not taken
  };
  const std::vector<Case> cases = {
      {fffd, 3, 3},
      {fffd + fffd + ".\n/x", 8, 9},                         // o200k's run takes the trailing '/'
      {fffd + "1", 3, 3},                                    // a digit ends the run
      {fffd + " a", 3, 3},                                   // so does a space
      {"..\xe2\x80\x94" + fffd + "#a", 9, 9},                // ASCII run on through non-ASCII punctuation
      {" .\xf0\x9f\x98\x80" "a", 6, 6},                         // and through an emoji
      {fffd + "ab.", 5, 5},                                  // "\uFFFDab" is a word, U+FFFD its prefix
      {fffd + "ab\xc3\xa9" + fffd, 7, -1},                   // cl100k's word goes on through letters
      {fffd + "\xcc\x81", -1, -1},                           // a mark: o200k's word, so the general path
      {fffd + "\xef\xbf\x9a", -1, -1},                        // U+FFDA is a letter
      {"." + fffd + "a", 4, 4},                              // punctuation, then U+FFFD: one run
      {" " + fffd + fffd + "1", 7, 7},                       // so a space, and U+FFFD after it
      {"\x0f" + fffd + "#\n", 6, 6},                         // an ASCII control is punctuation
      {"\t" + fffd, -1, -1},                                 // other whitespace: the general path
      {"\n" + fffd, -1, -1},
      {"." + std::string("\xc3\xa9"), 3, -1},               // a letter after punctuation: a word
      {"12" + fffd, 2, 2},                                   // U+FFFD ends a group of digits
      {"12\xd9\xa3", -1, -1},                                // an Arabic-Indic digit may continue it
      {"ab" + fffd, 2, -1},                                  // and a word (cl100k; o200k: general)
      {"ab\xc3\xa9 ", 4, -1},
      {" \xd0\xb4\xd0\xbb\xd1\x8f.", 7, -1},                 // " для": a prefixed word of non-ASCII
      {"(\xe6\x97\xa5\xe6\x9c\xac", 7, -1},                   // letters (cl100k; o200k: general)
      {"\t\xd0\xb4 ", 3, -1},
      {"\n\xd0\xb4", -1, -1},                                 // a newline prefixes no word
      {" \xc2\xa0", -1, -1},                                   // U+00A0 is a space, no letter
      {" \xcc\x81", -1, -1},                                   // a mark is no letter to cl100k
  };
  for (const Case& c : cases) {
    EXPECT_EQ(fast_length(c.text, Cl100kScanner{}), c.cl100k) << "cl100k, \"" << c.text << "\"";
    EXPECT_EQ(fast_length(c.text, O200kScanner{}), c.o200k) << "o200k, \"" << c.text << "\"";
    expect_same_pieces_both(c.text);
  }
}

}  // namespace
