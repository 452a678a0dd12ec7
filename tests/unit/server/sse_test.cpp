// Server-sent event framing as chat streams use it.
#include "server/sse.hpp"

#include <gtest/gtest.h>

#include <string>

namespace turnout::server {
namespace {

TEST(SseEventEnd, EndsAtTheFirstBlankLineWhateverTheLineEndings) {
  EXPECT_EQ(sse_event_end("data: a\n\ndata: b\n\n"), 9u);
  EXPECT_EQ(sse_event_end("data: a\r\n\r\nrest"), 11u);
  EXPECT_EQ(sse_event_end("data: a\r\rrest"), 9u);
  EXPECT_EQ(sse_event_end(": keep-alive\n\n"), 14u);
}

TEST(SseEventEnd, IncompleteEventsAreNotEnded) {
  EXPECT_EQ(sse_event_end(""), std::string::npos);
  EXPECT_EQ(sse_event_end("data: a\n"), std::string::npos);
  EXPECT_EQ(sse_event_end("data: a\r\n\r"), std::string::npos);  // may still become \r\n
  EXPECT_EQ(sse_event_end("data: a\ndata: b"), std::string::npos);
}

TEST(SseEventData, JoinsDataLinesAndSkipsTheOptionalSpace) {
  std::string scratch;
  std::string_view data;
  ASSERT_TRUE(sse_event_data("event: x\ndata: {\"a\":1}\n\n", scratch, data));
  EXPECT_EQ(data, "{\"a\":1}");
  ASSERT_TRUE(sse_event_data("data:one\r\ndata:  two\r\n\r\n", scratch, data));
  EXPECT_EQ(data, "one\n two");
  EXPECT_FALSE(sse_event_data(": comment\n\n", scratch, data));
}

}  // namespace
}  // namespace turnout::server
