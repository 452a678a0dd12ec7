// The one copy of UTF-8 repair and JSON string writing that every stage uses.
#include "common/json_text.hpp"
#include "common/utf8.hpp"

#include <gtest/gtest.h>

#include <string>

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
