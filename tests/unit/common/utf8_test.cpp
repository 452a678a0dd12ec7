// The one copy of UTF-8 repair and JSON string writing that every stage uses.
#include "common/json_text.hpp"
#include "common/utf8.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace turnout {
namespace {

const std::string fffd = "\xEF\xBF\xBD";

TEST(Utf8, RepairsEachMaximalInvalidSubpartOnce) {
  EXPECT_EQ(replace_invalid_utf8("a\x80z"), "a" + fffd + "z");
  EXPECT_EQ(replace_invalid_utf8("\xed\xa0\x80"), fffd + fffd + fffd);  // surrogate: 3 subparts
  EXPECT_EQ(replace_invalid_utf8("\xe2\x82"), fffd);                    // truncated: 1 subpart
  EXPECT_EQ(replace_invalid_utf8("\xc0\xaf"), fffd + fffd);             // overlong
  EXPECT_EQ(replace_invalid_utf8("\xe2\x28\xa1"), fffd + "(" + fffd);
  EXPECT_EQ(replace_invalid_utf8("0123456789abcdef\xff"), "0123456789abcdef" + fffd);  // after the 8-byte fast path
}

TEST(Utf8, ValidPrefixStopsAtTheFirstInvalidByte) {
  EXPECT_EQ(valid_utf8_prefix("plain ascii text \xe6\x97\xa5 then \xff more"), 26u);
  EXPECT_TRUE(is_valid_utf8("\xef\xbb\xbf\xf0\x9f\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
}

// The repair one sequence at a time, the obvious way: what the block-wise repair must give.
std::string repaired_one_sequence_at_a_time(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    const Utf8Sequence sequence = next_utf8_sequence(text, i);
    out += sequence.valid ? std::string(text.substr(i, sequence.length)) : fffd;
    i += sequence.length;
  }
  return out;
}

// Random texts from valid characters of every length, truncated and overlong sequences,
// surrogates, stray continuation bytes and ASCII, long enough to cross the validator's
// SIMD blocks and the repair's 16 KB blocks: the SIMD validator must agree with the
// scalar one, and the repair with the one-sequence-at-a-time reference.
TEST(Utf8, ValidationAndRepairAgreeWithTheScalarReferenceOnRandomText) {
  const std::vector<std::string> fragments = {
      "a", "plain ascii run ", "\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x98\x80", "\xef\xbf\xbd",
      "\x80", "\xbf", "\xc3", "\xe6\x97", "\xf0\x9f\x98", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
      "\xf4\x90\x80\x80", "\xff", "\xfe", "\n"};
  std::mt19937 random(22);
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    const bool valid_only = random() % 3 == 0;
    const std::size_t pieces = round % 100 == 0 ? 8000 : random() % 80;
    for (std::size_t i = 0; i < pieces; ++i) {
      text += fragments[random() % (valid_only ? 6 : fragments.size())];
    }
    ASSERT_EQ(is_valid_utf8(text), valid_utf8_prefix(text) == text.size()) << round;
    if (valid_only) {
      ASSERT_TRUE(is_valid_utf8(text)) << round;
    }
    const std::string repaired = replace_invalid_utf8(text);
    ASSERT_EQ(repaired, repaired_one_sequence_at_a_time(text)) << round;
    ASSERT_TRUE(is_valid_utf8(repaired)) << round;
  }
}

TEST(Utf8, AsValidUtf8CopiesOnlyWhenItMustRepair) {
  std::string scratch;
  const std::string valid = "caf\xc3\xa9";
  EXPECT_EQ(as_valid_utf8(valid, scratch).data(), valid.data());
  EXPECT_EQ(as_valid_utf8("x\xffy", scratch), "x" + fffd + "y");
}

TEST(JsonString, EscapesWhatJsonRequiresAndRepairsInvalidUtf8) {
  std::string out;
  const char raw[] = "q\"b\\n\nt\tc\x01 \xc3\xa9 \xff";
  append_json_string(out, std::string(raw, sizeof raw - 1));
  EXPECT_EQ(out, "\"q\\\"b\\\\n\\nt\\tc\\u0001 \xc3\xa9 " + fffd + "\"");
}

TEST(JsonString, KeepsEmbeddedNulAsAnEscape) {
  std::string out;
  append_json_string(out, std::string("a\0b", 3));
  EXPECT_EQ(out, "\"a\\u0000b\"");
}

}  // namespace
}  // namespace turnout
