#pragma once
// The access log's sink: each message's text is one line (the caller formats it: the
// access log's lines are JSON built by log_access), appended to a buffer under a mutex held
// only for that copy; one background thread writes what has gathered in one write(2).
// spdlog's async logger woke its thread for every line (a futex wake-up and a write per
// request, issue 16). Under load the writer never blocks on a futex: it sleeps kGatherTime
// with nanosleep, takes what gathered, writes it, and sleeps again. Only when kIdleTurns
// turns in a row find nothing does it wait on a condition variable, marked idle, and the
// next line wakes it (the one notify a logger makes). So a line reaches the file descriptor
// within ~2 ms plus a write, under load and after an idle spell.
//
// Memory is bounded, and no logger waits for long: past kMaxPendingBytes a caller waits for
// room at most kRoomWait, and not at all once a caller saw the writer take no batch in that
// time (until it takes the next); a line that finds no room is dropped and counted. The
// access log must not be able to stop the gateway (the ledger is the durable record).
//
// Only whole lines reach the descriptor: when a write fails part-way through a line
// (ENOSPC, EFBIG, EPIPE), the rest of that line is kept and written first next time (and
// once more at the stop), and the batch's later lines are dropped (and counted); a
// non-blocking descriptor that is full (EAGAIN) is waited for with poll(2), as a blocking
// one would be. The sink writes to its own duplicate of the descriptor, so the caller may
// close its number whenever it likes and a writer never writes into whatever reuses it.
// flush() and stop() hand the rest to the writer and wait while it makes progress (bytes
// written or dropped): they give up after stall_wait with none, or once shutdown_cap has
// passed since the writer was first found slow (a flush's budget is its own; the stop's is
// one for all its waits). A reader slower than kWriteChunk per stall_wait (32 KB/s) counts
// as stalled. A later wait after a give-up returns at once unless the writer has made
// progress since. A stdout whose
// reader stopped reading then blocks the writer in write(2), not the shutdown: the writer's
// state is shared with its thread, which is detached (what it holds goes with the process,
// and a large write cut by the exit can leave the last line cut).
#include <spdlog/sinks/sink.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
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
  static_assert(kGatherTime <= std::chrono::milliseconds(2), "the documented bound on a line's delay");
  // Turns in a row that find nothing before the writer waits for a line: each idle spell
  // costs a logger's notify, a wait and a wake on the mutex; two (~4 ms of nothing) are rare
  // under load.
  static constexpr int kIdleTurns = 2;
  // How long a caller waits for room in a full buffer: it blocks an event loop, so short;
  // 4 MB pending means the descriptor is far behind anyway.
  static constexpr std::chrono::milliseconds kRoomWait{10};
  // The most one write(2) takes: the writer's progress is counted per write, so a slow but
  // live reader shows progress well within a stall wait (a pipe holds 64 KB). Ends on a line
  // boundary where one falls inside, so an exit between two writes cuts no line.
  static constexpr std::size_t kWriteChunk = std::size_t{64} << 10;
  static constexpr std::chrono::milliseconds kStallWait{2000};
  static constexpr std::chrono::milliseconds kShutdownCap{10000};

  // The sink writes to its own duplicate of fd (made here, close-on-exec, closed by the last
  // of the sink and its writer); if fd cannot be duplicated (a closed descriptor: serve
  // never passes one, it opens /dev/null on closed descriptors 0-2), every line is dropped
  // and counted. stall_wait and shutdown_cap bound flush() and stop().
  explicit BatchedLogSink(int fd, std::chrono::milliseconds stall_wait = kStallWait,
                          std::chrono::milliseconds shutdown_cap = kShutdownCap);
  ~BatchedLogSink() override;  // stop(), unless called already
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

  struct Stopped {
    std::uint64_t dropped_lines = 0;
    // Bytes logged but not written when the writer was left behind (0 when it finished).
    std::uint64_t unwritten_bytes = 0;
    bool writer_left = false;  // the descriptor stalled: the writer was detached
    // One line for the operator ("" when nothing was lost): counts only, never a line's text.
    std::string summary() const;
  };
  // Writes what is pending (bounded as flush() is) and stops the writer; later lines are
  // dropped and counted. Returns what was lost, so the caller can say so (serve: stderr).
  Stopped stop();

  // Lines not written: refused by the descriptor, or finding no room (a line cut by a failed
  // write is counted once the stop gives up on its rest).
  std::uint64_t dropped_lines() const;
  // Callers that found the buffer full and waited (at most kRoomWait) for room (a test's
  // check that one wait is paid per batch the writer takes, not per chunk it writes).
  std::uint64_t room_waits() const;
  // write(2) calls made, failed ones too (a test's check that a full descriptor is waited
  // for, not spun on).
  std::uint64_t write_calls() const;
  // The writer waits for a line (a test's check that it goes idle).
  bool writer_idle() const;

 private:
  struct State;  // shared by the sink and its writer thread
  // Waits on the writer until done() holds; false when it gave up (see the class comment).
  template <class Done>
  bool wait_for_writer(std::unique_lock<std::mutex>& lock, Done done);

  std::shared_ptr<State> state_;
  const std::chrono::milliseconds stall_wait_;
  const std::chrono::milliseconds shutdown_cap_;
  std::thread writer_;
  std::optional<Stopped> stopped_;  // guarded by the state's mutex
};

}  // namespace turnout::server
