// The access log's sink (issue 16): lines written by one background thread in batches,
// in order, each within about a millisecond; flush() and the destructor write the rest.
#include "server/batched_log_sink.hpp"

#include <spdlog/logger.h>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace {

using turnout::server::BatchedLogSink;

// A pipe whose read end is non-blocking: read_available() returns what has arrived.
struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() {
    EXPECT_EQ(::pipe(fds), 0);
    ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  }
  ~Pipe() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  std::string read_available() const {
    std::string out;
    char buffer[4096];
    for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) out.append(buffer, static_cast<std::size_t>(n));
    return out;
  }
};

std::string expected_lines(int count) {
  std::string out;
  for (int i = 0; i < count; ++i) out += "{\"n\":" + std::to_string(i) + "}\n";
  return out;
}

TEST(BatchedLogSink, LinesArriveInOrderWithoutAFlush) {
  Pipe pipe;
  auto sink = std::make_shared<BatchedLogSink>(pipe.fds[1]);
  spdlog::logger log("test", sink);
  log.set_pattern("%v");
  for (int i = 0; i < 100; ++i) log.info("{{\"n\":{}}}", i);
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (got.size() < expected_lines(100).size() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    got += pipe.read_available();
  }
  EXPECT_EQ(got, expected_lines(100));
}

TEST(BatchedLogSink, FlushWritesEverythingAtOnce) {
  Pipe pipe;
  auto sink = std::make_shared<BatchedLogSink>(pipe.fds[1]);
  spdlog::logger log("test", sink);
  log.set_pattern("%v");
  for (int i = 0; i < 3; ++i) log.info("{{\"n\":{}}}", i);
  log.flush();
  std::string got = pipe.read_available();
  // The writer thread may have taken a batch just before the flush; it writes it first.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (got.size() < expected_lines(3).size() && std::chrono::steady_clock::now() < deadline) got += pipe.read_available();
  EXPECT_EQ(got, expected_lines(3));
}

TEST(BatchedLogSink, TheDestructorWritesWhatIsPending) {
  Pipe pipe;
  {
    auto sink = std::make_shared<BatchedLogSink>(pipe.fds[1]);
    spdlog::logger log("test", sink);
    log.set_pattern("%v");
    for (int i = 0; i < 50; ++i) log.info("{{\"n\":{}}}", i);
  }
  EXPECT_EQ(pipe.read_available(), expected_lines(50));
}

}  // namespace
