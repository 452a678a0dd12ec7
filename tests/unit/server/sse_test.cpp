// Server-sent event framing as chat streams use it: events split anywhere across reads are
// found whole, scanning stays linear, and an event that never ends is refused past the
// bound instead of growing the buffer.
#include "server/sse.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

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

namespace ts = turnout::server;

namespace {

std::vector<std::string> frame(std::string_view stream, std::size_t piece) {
  ts::SseFramer framer(1 << 20);
  std::vector<std::string> events;
  for (std::size_t i = 0; i < stream.size(); i += piece) {
    framer.append(stream.substr(i, piece));
    while (auto event = framer.next_event()) events.emplace_back(*event);
  }
  return events;
}

}  // namespace

TEST(SseFramer, EventsSplitAtEveryByteAreFoundWhole) {
  const std::string stream = "data: a\n\n: ping\r\n\r\ndata: b\r\rdata: c\ndata: d\r\n\ndata: e\n\r\n";
  const std::vector<std::string> expected = {"data: a\n\n", ": ping\r\n\r\n", "data: b\r\r", "data: c\ndata: d\r\n\n",
                                             "data: e\n\r\n"};
  for (std::size_t piece = 1; piece <= stream.size(); ++piece) EXPECT_EQ(frame(stream, piece), expected) << piece;
}

TEST(SseFramer, ResumedScanAgreesWithAWholeScan) {
  const std::string stream = "data: x\r\n\r\n";
  for (std::size_t from = 0; from <= stream.size(); ++from) {
    const std::string_view prefix(stream.data(), from);
    if (ts::sse_event_end(prefix) != std::string_view::npos) continue;
    EXPECT_EQ(ts::sse_event_end(stream, from), stream.size()) << from;
  }
}

TEST(SseFramer, UnfinishedEventPastTheBoundIsOversized) {
  ts::SseFramer framer(1000);
  framer.append("data: ok\n\n");
  ASSERT_TRUE(framer.next_event());
  framer.append("data: " + std::string(990, 'x'));
  EXPECT_FALSE(framer.next_event());
  EXPECT_FALSE(framer.oversized());
  framer.append(std::string(10, 'x'));
  EXPECT_TRUE(framer.oversized());
}

TEST(SseFramer, OneLongUnfinishedEventCostsLinearTime) {
  // 8 MB of one event in 8 KiB reads: rescanning from the start each time is ~4 billion
  // byte visits (seconds); a resumed scan is 8 million.
  ts::SseFramer framer(16u << 20);
  const std::string piece(8192, 'x');
  const auto started = std::chrono::steady_clock::now();
  framer.append("data: ");
  for (int i = 0; i < 1024; ++i) {
    framer.append(piece);
    ASSERT_FALSE(framer.next_event());
  }
  framer.append("\n\n");
  auto event = framer.next_event();
  ASSERT_TRUE(event);
  EXPECT_EQ(event->size(), 6u + (8u << 20) + 2u);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(500));
}
