// Counting a streamed text piece by piece gives exactly the count of the whole text, and
// holds back only the last few pieces.
#include "tokenizer/streaming_count.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace tk = turnout::tokenizer;

namespace {

// Fragments chosen for the piece rules that look ahead: whitespace runs before words,
// contractions after words (o200k merges them), digit runs, punctuation with trailing
// newlines, non-ASCII letters, marks and spaces.
const std::vector<std::string> kFragments = {
    "Hello", "hello", "HELLO", "'", "s", "re", "ll", "'re", "'S", " ", "  ", "   ", "\n", "\r\n", "\n\n", "\t",
    "1", "23", "4567", ".", "...", "!?", "/", "//", "é", "É", "中文", "\xC2\xA0", "\xE2\x80\x83", "a\xCC\x81",
    "x", "Ab", "cD", "_", "-", "\"", "{", "}", ":", "😀", "ſ", "don't", " the", "\u0130"};

std::string random_text(std::mt19937& rng, std::size_t fragments) {
  std::uniform_int_distribution<std::size_t> pick(0, kFragments.size() - 1);
  std::string text;
  for (std::size_t i = 0; i < fragments; ++i) text += kFragments[pick(rng)];
  return text;
}

}  // namespace

TEST(StreamingCount, EqualsTheCountOfTheWholeTextForAnySplit) {
  std::mt19937 rng(21);
  for (const auto id : {tk::EncodingId::cl100k_base, tk::EncodingId::o200k_base}) {
    const tk::Encoding& encoding = tk::Encoding::get(id);
    for (int round = 0; round < 300; ++round) {
      const std::string text = random_text(rng, 50 + round * 10);
      tk::StreamingCount streamed(id);
      std::uniform_int_distribution<std::size_t> delta(1, 12);
      std::size_t i = 0;
      while (i < text.size()) {
        // Deltas are whole JSON strings, so whole UTF-8 characters: split between them.
        std::size_t n = std::min(delta(rng), text.size() - i);
        while (i + n < text.size() && (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80) ++n;
        streamed.append(std::string_view(text).substr(i, n));
        i += n;
      }
      ASSERT_EQ(streamed.total(), encoding.count(text)) << tk::encoding_name(id) << " round " << round;
    }
  }
}

TEST(StreamingCount, KeepsOnlyTheLastPieces) {
  tk::StreamingCount streamed(tk::EncodingId::o200k_base);
  std::string whole;
  for (int i = 0; i < 100000; ++i) {
    const std::string delta = " word" + std::to_string(i % 7) + ",";
    streamed.append(delta);
    whole += delta;
  }
  EXPECT_LT(streamed.pending_bytes(), 4096u);
  EXPECT_EQ(streamed.total(), tk::Encoding::get(tk::EncodingId::o200k_base).count(whole));
}
