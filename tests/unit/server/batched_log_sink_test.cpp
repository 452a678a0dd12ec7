// The access log's sink (issue 16): each message one line, written by one background thread
// in batches, in order, each within about two milliseconds, also after an idle spell; callers
// wait when the buffer is full; flush() and the destructor write the rest, bounded when the
// descriptor stalls; only whole lines reach the descriptor.
#include "server/batched_log_sink.hpp"

#include <spdlog/logger.h>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

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
  // Reads until `got` holds `size` bytes or five seconds pass (the writer has no flush).
  void read_until(std::string& got, std::size_t size) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (got.size() < size && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      got += read_available();
    }
  }
};

std::string expected_lines(int count, int from = 0) {
  std::string out;
  for (int i = from; i < from + count; ++i) out += "{\"n\":" + std::to_string(i) + "}\n";
  return out;
}

TEST(BatchedLogSink, LinesArriveInOrderWithoutAFlush) {
  Pipe pipe;
  auto sink = std::make_shared<BatchedLogSink>(pipe.fds[1]);
  spdlog::logger log("test", sink);
  for (int i = 0; i < 100; ++i) log.info("{{\"n\":{}}}", i);
  std::string got;
  pipe.read_until(got, expected_lines(100).size());
  EXPECT_EQ(got, expected_lines(100));
}

// The writer waits on its condition variable only after a turn that found nothing; the
// first line after that must wake it, or it would sit until the next flush.
TEST(BatchedLogSink, ALineAfterAnIdleSpellArrivesWithoutAFlush) {
  Pipe pipe;
  auto sink = std::make_shared<BatchedLogSink>(pipe.fds[1]);
  spdlog::logger log("test", sink);
  for (int round = 0; round < 3; ++round) {
    log.info("{{\"n\":{}}}", round);
    std::string got;
    pipe.read_until(got, expected_lines(1, round).size());
    EXPECT_EQ(got, expected_lines(1, round)) << "round " << round;
    // Long enough for the writer to find an empty buffer kIdleTurns times and go idle.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

TEST(BatchedLogSink, EachMessageIsItsTextAndANewlineWhateverThePattern) {
  Pipe pipe;
  {
    auto sink = std::make_shared<BatchedLogSink>(pipe.fds[1]);
    spdlog::logger log("test", sink);
    log.set_pattern("[%l] %n: %v");  // ignored: the caller formats its line
    log.warn(R"({"event":"cooldown"})");
    log.error(R"({"event":"ledger_unavailable"})");
  }
  EXPECT_EQ(pipe.read_available(), "{\"event\":\"cooldown\"}\n{\"event\":\"ledger_unavailable\"}\n");
}

TEST(BatchedLogSink, FlushWritesEverythingAtOnce) {
  Pipe pipe;
  auto sink = std::make_shared<BatchedLogSink>(pipe.fds[1]);
  spdlog::logger log("test", sink);
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
    for (int i = 0; i < 50; ++i) log.info("{{\"n\":{}}}", i);
  }
  EXPECT_EQ(pipe.read_available(), expected_lines(50));
}

// Lines from several threads (the event loops) are never cut into each other, and each
// thread's lines stay in the order it logged them.
TEST(BatchedLogSink, LinesFromSeveralThreadsStayWholeAndInOrder) {
  constexpr int kThreads = 4;
  constexpr int kLines = 5000;
  Pipe pipe;
  std::atomic<bool> done{false};
  std::string got;
  std::thread reader([&] {  // a pipe holds 64 KB: drain it while the loggers run
    while (!done.load()) {
      got += pipe.read_available();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    got += pipe.read_available();
  });
  {
    auto sink = std::make_shared<BatchedLogSink>(pipe.fds[1]);
    spdlog::logger log("test", sink);
    std::vector<std::thread> loggers;
    for (int t = 0; t < kThreads; ++t)
      loggers.emplace_back([&log, t] {
        for (int n = 0; n < kLines; ++n) log.info("{{\"t\":{},\"n\":{},\"pad\":\"{:40}\"}}", t, n, "");
      });
    for (auto& logger : loggers) logger.join();
  }
  done = true;
  reader.join();

  std::vector<int> next(kThreads, 0);
  std::istringstream lines(got);
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    int t = -1;
    int n = -1;
    ASSERT_EQ(std::sscanf(line.c_str(), "{\"t\":%d,\"n\":%d,", &t, &n), 2) << line;
    ASSERT_TRUE(t >= 0 && t < kThreads) << line;
    ASSERT_EQ(line.size(), line.find("\"pad\":") + 6 + 42 + 1) << line;
    ASSERT_EQ(n, next[static_cast<std::size_t>(t)]) << "thread " << t << " out of order";
    ++next[static_cast<std::size_t>(t)];
    ++count;
  }
  EXPECT_EQ(count, kThreads * kLines);
}

// With the descriptor not taking bytes, a caller waits once kMaxPendingBytes are pending
// instead of growing the buffer; when the reader comes back, every line arrives in order.
TEST(BatchedLogSink, AFullBufferMakesTheCallerWait) {
  Pipe pipe;
  const std::string pad(1000, 'x');
  // Past what the pipe (64 KB), the writer's batch in hand and the buffer (each at most
  // about kMaxPendingBytes) can hold.
  const int lines = static_cast<int>(2 * BatchedLogSink::kMaxPendingBytes / 1000) + 400;
  std::atomic<int> logged{0};
  auto sink = std::make_shared<BatchedLogSink>(pipe.fds[1]);
  spdlog::logger log("test", sink);
  std::thread logger([&] {
    for (int i = 0; i < lines; ++i) {
      log.info("{:07d}{}", i, pad);
      logged = i + 1;
    }
  });
  // Nobody reads: the writer blocks in write(2) once the pipe is full, and the buffer fills.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_LT(logged.load(), lines) << "the caller never waited: the buffer grew past its bound";

  std::string got;
  const std::size_t line_size = 7 + pad.size() + 1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (got.size() < line_size * static_cast<std::size_t>(lines) && std::chrono::steady_clock::now() < deadline) {
    got += pipe.read_available();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  logger.join();
  ASSERT_EQ(got.size(), line_size * static_cast<std::size_t>(lines));
  for (int i = 0; i < lines; i += 997) {
    char number[8];
    std::snprintf(number, sizeof number, "%07d", i);
    EXPECT_EQ(got.compare(line_size * static_cast<std::size_t>(i), 7, number), 0) << "line " << i;
  }
}

// A descriptor that refuses every write (stdout closed or not writable): the lines are
// dropped and counted, and neither flush() nor the destructor hangs on them.
TEST(BatchedLogSink, ADescriptorThatRefusesWritesDropsAndCountsTheLines) {
  const int read_only = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(read_only, 0);
  {
    auto sink = std::make_shared<BatchedLogSink>(read_only);
    spdlog::logger log("test", sink);
    for (int i = 0; i < 1000; ++i) log.info("{{\"n\":{}}}", i);
    log.flush();
    EXPECT_EQ(sink->dropped_lines(), 1000u);
    for (int i = 0; i < 10; ++i) log.info("{{\"n\":{}}}", i);
    log.flush();
    EXPECT_EQ(sink->dropped_lines(), 1010u);
  }
  ::close(read_only);
}

// stdout may be a non-blocking pipe (whoever shares it set O_NONBLOCK): a full pipe is
// waited for, not taken for a dead descriptor, so no line is lost or cut.
TEST(BatchedLogSink, AFullNonBlockingDescriptorIsWaitedFor) {
  Pipe pipe;
  ::fcntl(pipe.fds[1], F_SETFL, O_NONBLOCK);
  ::fcntl(pipe.fds[1], F_SETPIPE_SZ, 4096);
  constexpr int kLines = 3000;  // ~36 KB in the first batches: the pipe fills part-way through
  std::atomic<bool> done{false};
  std::string got;
  std::thread reader([&] {  // a slow reader: the writer finds the pipe full again and again
    while (!done.load()) {
      got += pipe.read_available();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    got += pipe.read_available();
  });
  std::uint64_t dropped = 0;
  {
    auto sink = std::make_shared<BatchedLogSink>(pipe.fds[1]);
    spdlog::logger log("test", sink);
    for (int i = 0; i < kLines; ++i) log.info("{{\"n\":{}}}", i);
    log.flush();
    dropped = sink->dropped_lines();
  }
  done = true;
  reader.join();
  EXPECT_EQ(dropped, 0u);
  EXPECT_EQ(got, expected_lines(kLines));
}

// A write that fails part-way through a line (here EFBIG past RLIMIT_FSIZE; ENOSPC
// behaves alike) leaves no cut line in the log: the line's rest is written before the
// next lines once the descriptor takes bytes again, and the lines after it are dropped.
TEST(BatchedLogSink, AWriteThatFailsMidLineLeavesNoCutLine) {
  char path[] = "/tmp/turnout-sink-test-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::unlink(path);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of the signal
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  // Each line is 10 bytes ({"n":042} and a newline): byte 1,005 falls inside line 100.
  const auto line = [](int n) {
    char text[32];
    std::snprintf(text, sizeof text, "{\"n\":%03d}\n", n);
    return std::string(text);
  };
  std::uint64_t dropped = 0;
  {
    auto sink = std::make_shared<BatchedLogSink>(fd);
    spdlog::logger log("test", sink);
    const rlimit small{1005, old_limit.rlim_max};
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
    for (int i = 0; i < 200; ++i) log.info("{{\"n\":{:03}}}", i);
    log.flush();
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    dropped = sink->dropped_lines();
    for (int i = 200; i < 210; ++i) log.info("{{\"n\":{:03}}}", i);
  }
  std::signal(SIGXFSZ, old_handler);
  std::string expected;
  for (int i = 0; i <= 100; ++i) expected += line(i);
  for (int i = 200; i < 210; ++i) expected += line(i);
  std::string got(4096, '\0');
  const ssize_t n = ::pread(fd, got.data(), got.size(), 0);
  ::close(fd);
  ASSERT_GE(n, 0);
  got.resize(static_cast<std::size_t>(n));
  EXPECT_EQ(got, expected);
  EXPECT_EQ(dropped, 99u);  // lines 101-199
}

// A stdout whose reader stopped reading blocks the writer in write(2); flush() and the
// destructor still return after the shutdown wait, and a reader that comes back later
// gets every line.
TEST(BatchedLogSink, AStalledDescriptorDoesNotBlockTheShutdown) {
  Pipe pipe;
  const std::string pad(100, 'x');
  constexpr int kLines = 2000;  // ~210 KB: past the pipe's 64 KB
  auto sink = std::make_shared<BatchedLogSink>(pipe.fds[1], std::chrono::milliseconds(50));
  auto log = std::make_unique<spdlog::logger>("test", sink);
  for (int i = 0; i < kLines; ++i) log->info("{:05d}{}", i, pad);
  auto shutdown = std::async(std::launch::async, [&] {
    log->flush();
    log.reset();
    sink.reset();
  });
  EXPECT_EQ(shutdown.wait_for(std::chrono::seconds(5)), std::future_status::ready)
      << "the shutdown waited for a reader that does not read";
  std::string got;
  const std::size_t line_size = 5 + pad.size() + 1;
  pipe.read_until(got, line_size * kLines);  // lets a writer still blocked finish
  shutdown.wait();
  ASSERT_EQ(got.size(), line_size * kLines);
  for (int i = 0; i < kLines; i += 199) {
    char number[16];
    std::snprintf(number, sizeof number, "%05d", i);
    EXPECT_EQ(got.compare(line_size * static_cast<std::size_t>(i), 5, number), 0) << "line " << i;
  }
}

}  // namespace
