// The access log's sink (issue 16): each message one line, written by one background thread
// in batches, in order, each within about two milliseconds, also after an idle spell; the
// writer goes idle when there is nothing to write; a caller never blocks for long on a full
// buffer (it drops the line once the writer makes no progress); flush() and stop() write the
// rest and give up only on a writer that makes no progress (or past the shutdown cap); only
// whole lines reach the descriptor, and only the sink's own copy of it.
#include "server/batched_log_sink.hpp"

#include <spdlog/logger.h>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <future>
#include <memory>
#include <optional>
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
    if (fds[1] >= 0) ::close(fds[1]);
  }
  std::string read_available() const {
    std::string out;
    char buffer[4096];
    for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) out.append(buffer, static_cast<std::size_t>(n));
    return out;
  }
  // Flushes `log` while a thread drains the pipe into `got` (a full pipe would hold the
  // flush until its stall wait), then takes what is left.
  void flush_while_reading(spdlog::logger& log, std::string& got) const {
    std::atomic<bool> flushed{false};
    std::thread reader([&] {
      while (!flushed.load()) {
        got += read_available();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
    log.flush();
    flushed = true;
    reader.join();
    got += read_available();
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

// A temporary file (unlinked) whose writes fail with EFBIG past limit() bytes: RLIMIT_FSIZE,
// with SIGXFSZ ignored so the write fails instead of the signal killing the test. The
// limit and the handler are put back by lift() and at destruction.
struct SizeLimitedFile {
  int fd = -1;
  rlimit old_limit{};
  void (*old_handler)(int) = SIG_DFL;

  bool open() {
    char path[] = "/tmp/turnout-sink-test-XXXXXX";
    fd = ::mkstemp(path);
    if (fd < 0) return false;
    ::unlink(path);
    old_handler = std::signal(SIGXFSZ, SIG_IGN);
    return ::getrlimit(RLIMIT_FSIZE, &old_limit) == 0;
  }
  bool limit(rlim_t bytes) const {
    const rlimit small{bytes, old_limit.rlim_max};
    return ::setrlimit(RLIMIT_FSIZE, &small) == 0;
  }
  void lift() const { ::setrlimit(RLIMIT_FSIZE, &old_limit); }
  // The file's first 4 KB; nullopt if it cannot be read.
  std::optional<std::string> contents() const {
    std::string got(4096, '\0');
    const ssize_t n = ::pread(fd, got.data(), got.size(), 0);
    if (n < 0) return std::nullopt;
    got.resize(static_cast<std::size_t>(n));
    return got;
  }
  ~SizeLimitedFile() {
    if (fd < 0) return;
    lift();
    std::signal(SIGXFSZ, old_handler);
    ::close(fd);
  }
};

// Lines [from, to) as the size-limit tests log them: {"n":042} and a newline, 10 bytes.
std::string padded_lines(int from, int to) {
  std::string out;
  char text[32];
  for (int i = from; i < to; ++i) {
    std::snprintf(text, sizeof text, "{\"n\":%03d}\n", i);
    out += text;
  }
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

// A stdout that stopped taking bytes under load: once kMaxPendingBytes are pending a caller
// waits at most briefly, then drops its line (the event loops, and the SIGTERM handler's
// own line, must not block on stdout); the reader that comes back gets whole lines, in order.
TEST(BatchedLogSink, AStalledDescriptorUnderLoadDropsLinesInsteadOfBlockingTheCaller) {
  Pipe pipe;
  const std::string pad(1000, 'x');
  // Past what the pipe (64 KB), the writer's batch in hand and the buffer (each at most
  // about kMaxPendingBytes) can hold.
  const int lines = static_cast<int>(2 * BatchedLogSink::kMaxPendingBytes / 1000) + 400;
  auto sink = std::make_shared<BatchedLogSink>(pipe.fds[1]);
  spdlog::logger log("test", sink);
  auto logger = std::async(std::launch::async, [&] {
    for (int i = 0; i < lines; ++i) log.info("{:07d}{}", i, pad);
  });
  // Nobody reads until the check: the writer blocks in write(2) once the pipe is full.
  const bool returned = logger.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (logger.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready &&
         std::chrono::steady_clock::now() < deadline)
    got += pipe.read_available();  // lets a blocked caller go on, so a failure ends
  pipe.flush_while_reading(log, got);  // the pipe is full: the flush needs a reader
  ASSERT_TRUE(returned) << "a caller waited for a descriptor that takes no bytes";
  const std::uint64_t dropped = sink->dropped_lines();
  EXPECT_GT(dropped, 0u);
  const std::size_t line_size = 7 + pad.size() + 1;
  ASSERT_EQ(got.size() % line_size, 0u);
  EXPECT_EQ(got.size() / line_size + dropped, static_cast<std::uint64_t>(lines));
  int last = -1;
  for (std::size_t at = 0; at < got.size(); at += line_size) {
    const int n = std::stoi(got.substr(at, 7));
    ASSERT_GT(n, last) << "out of order at byte " << at;
    ASSERT_EQ(got.compare(at + 7, pad.size(), pad), 0) << "a cut line at byte " << at;
    ASSERT_EQ(got[at + line_size - 1], '\n');
    last = n;
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
  std::atomic<std::uint64_t> reads{0};
  std::thread reader([&] {  // a slow reader: the writer finds the pipe full again and again
    while (!done.load()) {
      got += pipe.read_available();
      ++reads;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    got += pipe.read_available();
  });
  std::uint64_t dropped = 0;
  std::uint64_t writes = 0;
  {
    auto sink = std::make_shared<BatchedLogSink>(pipe.fds[1]);
    spdlog::logger log("test", sink);
    for (int i = 0; i < kLines; ++i) log.info("{{\"n\":{}}}", i);
    log.flush();
    dropped = sink->dropped_lines();
    writes = sink->write_calls();
  }
  done = true;
  reader.join();
  EXPECT_EQ(dropped, 0u);
  EXPECT_EQ(got, expected_lines(kLines));
  // Each read frees room for about one write, and one more finds the pipe full: a writer
  // that retried EAGAIN without poll(2) would make thousands.
  EXPECT_LE(writes, 4 * reads.load() + 100) << "the writer spun on a full descriptor";
}

// A write that fails part-way through a line (here EFBIG past RLIMIT_FSIZE; ENOSPC
// behaves alike) leaves no cut line in the log: the line's rest is written before the
// next lines once the descriptor takes bytes again, and the lines after it are dropped.
TEST(BatchedLogSink, AWriteThatFailsMidLineLeavesNoCutLine) {
  SizeLimitedFile file;
  ASSERT_TRUE(file.open());
  std::uint64_t dropped = 0;
  {
    auto sink = std::make_shared<BatchedLogSink>(file.fd);
    spdlog::logger log("test", sink);
    ASSERT_TRUE(file.limit(1005));  // byte 1,005 falls inside line 100
    for (int i = 0; i < 200; ++i) log.info("{{\"n\":{:03}}}", i);
    log.flush();
    // The cut line's rest is refused again: these lines are dropped, not glued to it.
    for (int i = 300; i < 310; ++i) log.info("{{\"n\":{:03}}}", i);
    log.flush();
    file.lift();
    dropped = sink->dropped_lines();
    for (int i = 200; i < 210; ++i) log.info("{{\"n\":{:03}}}", i);
  }
  const auto got = file.contents();
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, padded_lines(0, 101) + padded_lines(200, 210));
  EXPECT_EQ(dropped, 109u);  // lines 101-199 and 300-309
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

// The sink writes to its own duplicate of the descriptor: a writer left behind on a stalled
// pipe keeps writing into that pipe after the caller closed its number, never into the file
// that reused the number.
TEST(BatchedLogSink, ALeftWriterNeverWritesIntoAReusedDescriptorNumber) {
  Pipe pipe;
  const std::string pad(1000, 'x');
  constexpr int kLines = 100;  // ~100 KB: past the pipe's 64 KB
  {
    auto sink = std::make_shared<BatchedLogSink>(pipe.fds[1], std::chrono::milliseconds(50));
    spdlog::logger log("test", sink);
    for (int i = 0; i < kLines; ++i) log.info("{:05d}{}", i, pad);
    log.flush();  // gives up: the pipe is full
    for (int i = kLines; i < kLines + 10; ++i) log.info("{:05d}{}", i, pad);
    EXPECT_TRUE(sink->stop().writer_left);
  }
  const int number = pipe.fds[1];
  ::close(pipe.fds[1]);
  pipe.fds[1] = -1;
  char path[] = "/tmp/turnout-sink-reuse-XXXXXX";
  const int reused = ::mkstemp(path);
  ASSERT_GE(reused, 0);
  ::unlink(path);
  EXPECT_EQ(reused, number) << "the test needs the number reused";
  std::string got;
  const std::size_t line_size = 5 + pad.size() + 1;
  pipe.read_until(got, line_size * (kLines + 10));
  EXPECT_EQ(got.size(), line_size * (kLines + 10));
  struct stat file {};
  ASSERT_EQ(::fstat(reused, &file), 0);
  ::close(reused);
  EXPECT_EQ(file.st_size, 0) << "access lines went into the file that reused the descriptor's number";
}

// A descriptor number that is not open (`turnout serve >&-`): every line is dropped and
// counted, also once something else opens that number.
TEST(BatchedLogSink, AClosedDescriptorDropsEveryLine) {
  const int number = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(number, 0);
  ::close(number);
  char path[] = "/tmp/turnout-sink-closed-XXXXXX";
  auto sink = std::make_shared<BatchedLogSink>(number);
  const int reused = ::mkstemp(path);
  ASSERT_GE(reused, 0);
  ::unlink(path);
  EXPECT_EQ(reused, number) << "the test needs the number reused";
  {
    spdlog::logger log("test", sink);
    for (int i = 0; i < 20; ++i) log.info("{{\"n\":{}}}", i);
    log.flush();
  }
  const auto stopped = sink->stop();
  EXPECT_EQ(stopped.dropped_lines, 20u);
  EXPECT_FALSE(stopped.writer_left);
  EXPECT_EQ(stopped.summary(), "turnout: access log: 20 lines dropped\n");
  struct stat file {};
  ASSERT_EQ(::fstat(reused, &file), 0);
  ::close(reused);
  EXPECT_EQ(file.st_size, 0);
}

// The stall wait counts time without progress: a slow but live reader gets every line
// before stop() returns, though draining takes many stall waits.
TEST(BatchedLogSink, ASlowReaderGetsEveryLineBeforeTheStopReturns) {
  Pipe pipe;
  const std::string pad(1000, 'x');
  constexpr int kLines = 3000;  // ~3 MB: ~45 reader steps of 64 KB, 30 ms apart (~1.4 s)
  std::atomic<bool> done{false};
  std::string got;
  std::thread reader([&] {
    char buffer[65536];
    while (!done.load()) {
      const ssize_t n = ::read(pipe.fds[0], buffer, sizeof buffer);
      if (n > 0) got.append(buffer, static_cast<std::size_t>(n));
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
  });
  BatchedLogSink::Stopped stopped;
  {
    // Each reader step lets a 64 KB write finish: progress every ~30 ms, against 400 ms.
    auto sink = std::make_shared<BatchedLogSink>(pipe.fds[1], std::chrono::milliseconds(400));
    spdlog::logger log("test", sink);
    for (int i = 0; i < kLines; ++i) log.info("{:05d}{}", i, pad);
    log.flush();
    stopped = sink->stop();
  }
  done = true;
  reader.join();
  got += pipe.read_available();  // what the last write left in the pipe
  EXPECT_FALSE(stopped.writer_left);
  EXPECT_EQ(stopped.dropped_lines, 0u);
  EXPECT_EQ(stopped.summary(), "") << "nothing lost, nothing to say";
  const std::size_t line_size = 5 + pad.size() + 1;
  ASSERT_EQ(got.size(), line_size * kLines) << "the stop gave up on a writer that was making progress";
}

// One budget for every wait: with a reader that keeps taking a little, the stop still
// returns once shutdown_cap has passed, and says how much it left unwritten.
TEST(BatchedLogSink, ATricklingReaderIsLeftAfterTheShutdownCap) {
  Pipe pipe;
  const std::string pad(1000, 'x');
  constexpr int kLines = 3000;
  std::atomic<bool> done{false};
  std::size_t taken = 0;
  std::thread reader([&] {  // 8 KB every 10 ms: a 64 KB write every ~80 ms, ~4 s for the lines
    char buffer[8192];
    while (!done.load()) {
      const ssize_t n = ::read(pipe.fds[0], buffer, sizeof buffer);
      if (n > 0) taken += static_cast<std::size_t>(n);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  auto sink = std::make_shared<BatchedLogSink>(pipe.fds[1], std::chrono::milliseconds(400), std::chrono::milliseconds(300));
  {
    spdlog::logger log("test", sink);
    for (int i = 0; i < kLines; ++i) log.info("{:05d}{}", i, pad);
  }
  auto stop = std::async(std::launch::async, [&] { return sink->stop(); });
  const bool returned = stop.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  done = true;
  reader.join();
  std::string rest;
  while (stop.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready) rest += pipe.read_available();
  const auto stopped = stop.get();
  sink.reset();
  EXPECT_TRUE(returned);
  EXPECT_TRUE(stopped.writer_left) << "the stop waited past its cap for a trickling reader";
  EXPECT_GT(stopped.unwritten_bytes, 0u);
  EXPECT_EQ(stopped.summary(), "turnout: access log: 0 lines dropped, " + std::to_string(stopped.unwritten_bytes) +
                                   " bytes left unwritten (stdout stalled)\n");
  EXPECT_EQ(stopped.unwritten_bytes % (5 + pad.size() + 1), 0u) << "chunks end on whole lines here";
  // Lets the left writer finish before the pipe closes (a write into a pipe with no reader
  // would raise SIGPIPE).
  pipe.read_until(rest, kLines * (5 + pad.size() + 1) - taken);
  EXPECT_EQ(taken + rest.size(), kLines * (5 + pad.size() + 1));
}

// A flush that gave up on a reader slow at the time has no say over later flushes: once the
// reader is fast again, a flush waits until every line logged before it is written.
TEST(BatchedLogSink, AFlushThatGaveUpDoesNotCutLaterFlushesShort) {
  // A failure leaves a writer blocked on the pipe; closing its read end must fail the
  // expectations, not kill the test binary with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  Pipe pipe;
  const std::string pad(1000, 'x');
  const std::size_t line_size = 5 + pad.size() + 1;
  std::atomic<bool> fast{false};
  std::atomic<bool> done{false};
  std::string got;
  std::thread reader([&] {  // 8 KB every 10 ms (at most 800 KB/s) until told to read all
    char buffer[65536];
    while (!done.load()) {
      if (fast.load()) {
        pollfd readable{pipe.fds[0], POLLIN, 0};
        ::poll(&readable, 1, 10);
      }
      const ssize_t n = ::read(pipe.fds[0], buffer, fast.load() ? sizeof buffer : 8192);
      if (n > 0) got.append(buffer, static_cast<std::size_t>(n));
      if (!fast.load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  // A 64 KB write completes every ~80 ms at the slow pace: a stall wait of 1 s sees progress
  // in every window, and the flush's budget (1 s + 300 ms) ends long before ~2 MB can drain
  // (>= 2.5 s).
  auto sink = std::make_shared<BatchedLogSink>(pipe.fds[1], std::chrono::milliseconds(1000), std::chrono::milliseconds(300));
  spdlog::logger log("test", sink);
  for (int i = 0; i < 2000; ++i) log.info("{:05d}{}", i, pad);
  log.flush();  // gives up: progress, but past its budget
  fast = true;
  for (int i = 2000; i < 3000; ++i) log.info("{:05d}{}", i, pad);
  log.flush();
  done = true;
  reader.join();
  const std::string rest = pipe.read_available();  // at most the pipe's 64 KB
  EXPECT_EQ(got.size() + rest.size(), 3000 * line_size)
      << "the second flush returned before its lines were written (the first one's give-up stuck)";
  EXPECT_FALSE(sink->stop().writer_left);
}

// A write cut mid-line with no line after it: the stop writes the line's rest, so the file
// does not end in a fragment.
TEST(BatchedLogSink, TheStopCompletesALastCutLine) {
  SizeLimitedFile file;
  ASSERT_TRUE(file.open());
  std::uint64_t dropped = 0;
  {
    auto sink = std::make_shared<BatchedLogSink>(file.fd);
    spdlog::logger log("test", sink);
    ASSERT_TRUE(file.limit(1005));
    for (int i = 0; i < 200; ++i) log.info("{{\"n\":{:03}}}", i);
    log.flush();
    file.lift();
    dropped = sink->stop().dropped_lines;
  }
  const auto got = file.contents();
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, padded_lines(0, 101));
  EXPECT_EQ(dropped, 99u);
}

// After a spell with nothing to write the writer waits on its condition variable instead
// of turning every 2 ms for ever.
TEST(BatchedLogSink, TheWriterGoesIdle) {
  Pipe pipe;
  auto sink = std::make_shared<BatchedLogSink>(pipe.fds[1]);
  spdlog::logger log("test", sink);
  log.info(R"({"n":0})");
  std::string got;
  pipe.read_until(got, expected_lines(1).size());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!sink->writer_idle() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_TRUE(sink->writer_idle());
  log.info(R"({"n":1})");  // and wakes for the next line
  pipe.read_until(got, expected_lines(2).size());
  EXPECT_EQ(got, expected_lines(2));
}

// A reader slower than the logging: only the writer's take of a batch makes room, so once a
// caller has waited kRoomWait and seen no take, later callers drop at once until the next
// take, however many chunks of its batch the writer gets out meanwhile. (When each chunk
// written re-armed the wait, every chunk a slow reader drained cost some caller, an event
// loop, a full kRoomWait.)
TEST(BatchedLogSink, ChunksWrittenWithinOneBatchDoNotRearmTheWaitForRoom) {
  Pipe pipe;
  ASSERT_GT(::fcntl(pipe.fds[1], F_SETPIPE_SZ, 4096), 0);
  // Fill the pipe, so the writer's first write(2) blocks at once.
  ::fcntl(pipe.fds[1], F_SETFL, O_NONBLOCK);
  const std::string filler(4096, 'f');
  while (::write(pipe.fds[1], filler.data(), filler.size()) > 0) {
  }
  ::fcntl(pipe.fds[1], F_SETFL, 0);
  std::size_t filled = 0;  // bytes of filler in the pipe, read back first
  {
    int queued = 0;
    ASSERT_EQ(::ioctl(pipe.fds[0], FIONREAD, &queued), 0);
    filled = static_cast<std::size_t>(queued);
  }

  auto sink = std::make_shared<BatchedLogSink>(pipe.fds[1]);
  spdlog::logger log("test", sink);
  // The first batch: one line of eight write chunks, which the writer writes a chunk per
  // write(2) (it holds no line boundary), blocked in the first.
  const std::string big(8 * BatchedLogSink::kWriteChunk, 'b');
  log.info("{}", big);
  const auto wait_for_writes = [&](std::uint64_t calls) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (sink->write_calls() < calls && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return sink->write_calls() >= calls;
  };
  ASSERT_TRUE(wait_for_writes(1));

  // Fill the buffer to its bound: every line taken, none dropped yet.
  const std::string pad(999, 'x');
  const std::size_t to_bound = BatchedLogSink::kMaxPendingBytes / (pad.size() + 1) + 1;
  for (std::size_t i = 0; i < to_bound; ++i) log.info("{}", pad);
  ASSERT_EQ(sink->dropped_lines(), 0u);
  ASSERT_EQ(sink->room_waits(), 0u);
  // The first caller to find no room waits (and sees no take: the writer is blocked), later
  // ones drop at once.
  for (int i = 0; i < 20; ++i) log.info("{}", pad);
  EXPECT_EQ(sink->room_waits(), 1u);
  EXPECT_EQ(sink->dropped_lines(), 20u);

  // The reader drains the filler and the first chunk: the writer's first write(2) returns
  // and its second (of the same batch) blocks. Bytes were written; no batch was taken.
  // One pipe's worth per read: read_available() could chase the writer through its batch.
  std::string got;
  char buffer[4096];
  while (sink->write_calls() < 2 && got.size() < filled + 2 * BatchedLogSink::kWriteChunk) {
    const ssize_t n = ::read(pipe.fds[0], buffer, sizeof buffer);
    if (n > 0) got.append(buffer, static_cast<std::size_t>(n));
    else std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(wait_for_writes(2));
  ASSERT_LT(got.size(), filled + big.size()) << "the writer finished its first batch";
  for (int i = 0; i < 20; ++i) log.info("{}", pad);
  EXPECT_EQ(sink->room_waits(), 1u) << "a chunk written re-armed the wait for room";
  EXPECT_EQ(sink->dropped_lines(), 40u);

  // Drain the rest: the big line and the buffered lines arrive whole, in order.
  pipe.flush_while_reading(log, got);
  EXPECT_EQ(got.size(), filled + big.size() + 1 + to_bound * (pad.size() + 1));
  EXPECT_EQ(got.compare(filled, big.size() + 1, big + "\n"), 0);
}

}  // namespace
