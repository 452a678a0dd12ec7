#include "common/header_text.hpp"

#include <gtest/gtest.h>

namespace turnout {
namespace {

TEST(HeaderText, AppendsOneLine) {
  std::string out = "kept\r\n";
  append_header_line(out, "x-request-id", "req-1");
  EXPECT_EQ(out, "kept\r\nx-request-id: req-1\r\n");
  append_header_line(out, "x-empty", "");
  EXPECT_EQ(out, "kept\r\nx-request-id: req-1\r\nx-empty: \r\n");
}

// A value can never end its line and start a header (or a body) of its own.
TEST(HeaderText, DropsLineBreaksAndNulFromTheValue) {
  std::string out;
  constexpr char kValue[] = "evil\r\nSet-Cookie: a=b\r\n\r\nbody\0end";
  append_header_line(out, "x-turnout-model", std::string_view(kValue, sizeof kValue - 1));
  EXPECT_EQ(out, "x-turnout-model: evilSet-Cookie: a=bbodyend\r\n");
  out.clear();
  append_header_line(out, "x-request-id", "\n\r");
  EXPECT_EQ(out, "x-request-id: \r\n");
}

}  // namespace
}  // namespace turnout
