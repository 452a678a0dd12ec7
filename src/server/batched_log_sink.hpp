#pragma once
// The access log's sink: each message's text is one line (the caller formats it: the
// access log's lines are JSON built by log_access), appended to a buffer under a mutex held
// only for that copy; one background thread writes what has gathered in one write(2).
// spdlog's async logger woke its thread for every line (a futex wake-up and a write per
// request, issue 16). Under load the writer never blocks on a futex: it sleeps kGatherTime
// with nanosleep, takes what gathered, writes it, and sleeps again. Only when kIdleTurns
// turns in a row find nothing does it wait on a condition variable, marked idle, and the
// next line wakes it (the one notify a logger makes). So a line reaches the file descriptor
// within ~2 ms plus a write, under load and after an idle spell. Memory is bounded: past
// kMaxPendingBytes a caller waits for the writer, as the async logger's `block` overflow
// policy did.
//
// Only whole lines reach the descriptor: when a write fails part-way through a line
// (ENOSPC, EFBIG, EPIPE), the rest of that line is kept and written first next time, and
// the batch's later lines are dropped (and counted); a non-blocking descriptor that is full
// (EAGAIN) is waited for with poll(2), as a blocking one would be. flush() and the
// destructor hand the rest to the writer and wait for it at most the shutdown wait: a
// stdout whose reader stopped reading blocks the writer in write(2), not the shutdown. The
// writer's state is shared with its thread, which is then detached and left blocked (the
// lines it holds are lost with the process).
#include <spdlog/sinks/sink.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace turnout::server {

class BatchedLogSink final : public spdlog::sinks::sink {
 public:
  static constexpr std::size_t kMaxPendingBytes = std::size_t{4} << 20;
  // Two milliseconds, not one: at ~1,000 lines a second (the 8k-token load) a 1 ms turn
  // found one line or none, and each turn is a wake-up of this thread; the bound on a
  // line's delay is ~1-2 ms (issue 16, docs/BENCHMARKS.md `hot13`).
  static constexpr std::chrono::microseconds kGatherTime{2000};
  // Turns in a row that find nothing before the writer waits for a line: each idle spell
  // costs a logger's notify, a wait and a wake on the mutex; two (~4 ms of nothing) are rare
  // under load.
  static constexpr int kIdleTurns = 2;
  static constexpr std::chrono::milliseconds kShutdownWait{2000};

  // fd is not owned (stdout: 1). shutdown_wait bounds flush() and the destructor.
  explicit BatchedLogSink(int fd, std::chrono::milliseconds shutdown_wait = kShutdownWait);
  ~BatchedLogSink() override;  // writes what is pending (bounded), then stops the writer
  BatchedLogSink(const BatchedLogSink&) = delete;
  BatchedLogSink& operator=(const BatchedLogSink&) = delete;

  // Appends the message's text and a newline; level, time and logger name are not written.
  void log(const spdlog::details::log_msg& msg) override;
  // Returns once every line logged before it is written or dropped, or the shutdown wait
  // has passed.
  void flush() override;
  // Ignored: a pattern needs a formatter, which is not thread-safe, and formatting under
  // the sink's mutex made the event loops and the writer contend for it (issue 16).
  void set_pattern(const std::string& pattern) override;
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override;

  // Lines the descriptor refused (whole lines; a line cut by a failed write is completed
  // later, not counted).
  std::uint64_t dropped_lines() const;

 private:
  struct State;  // shared by the sink and its writer thread
  std::shared_ptr<State> state_;
  const std::chrono::milliseconds shutdown_wait_;
  std::thread writer_;
};

}  // namespace turnout::server
