#pragma once
// The access log's sink: each message's text is one line (the caller formats it: the
// access log's lines are JSON built by log_access), appended to a buffer under a mutex held
// only for that copy; one background thread writes what has gathered in one write(2).
// spdlog's async logger woke its thread for every line (a futex wake-up and a write per
// request, issue 16). Under load the writer never blocks on a futex: it sleeps a
// millisecond with nanosleep, takes what gathered, writes it, and sleeps again. Only when
// kIdleTurns turns in a row find nothing does it wait on a condition variable, marked
// idle, and the next line wakes it (the one notify a logger makes). So a line reaches the file descriptor
// within ~1 ms plus a write under load and ~1 ms after an idle spell; flush() (shutdown)
// writes everything at once. Memory is bounded: past kMaxPendingBytes a caller waits for
// the writer, as the async logger's `block` overflow policy did.
#include <spdlog/sinks/sink.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace turnout::server {

class BatchedLogSink final : public spdlog::sinks::sink {
 public:
  static constexpr std::size_t kMaxPendingBytes = std::size_t{4} << 20;
  static constexpr std::chrono::microseconds kGatherTime{1000};
  // Turns in a row that find nothing before the writer waits for a line: at ~1,000 lines
  // a second a single empty turn is common, and each idle spell costs a notify, a wait
  // and a wake on the mutex; three (~3 ms of nothing) are rare under load.
  static constexpr int kIdleTurns = 3;

  explicit BatchedLogSink(int fd);  // not owned (stdout: 1)
  ~BatchedLogSink() override;  // writes what is pending, then stops the writer
  BatchedLogSink(const BatchedLogSink&) = delete;
  BatchedLogSink& operator=(const BatchedLogSink&) = delete;

  // Appends the message's text and a newline; level, time and logger name are not written.
  void log(const spdlog::details::log_msg& msg) override;
  void flush() override;
  // Ignored: a pattern needs a formatter, which is not thread-safe, and formatting under
  // the sink's mutex made the event loops and the writer contend for it (issue 16).
  void set_pattern(const std::string& pattern) override;
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override;

 private:
  void run_writer();
  void write_all(const std::string& bytes);

  const int fd_;
  std::mutex mutex_;  // guards the fields below
  std::condition_variable has_lines_;  // the writer waits on it only when writer_idle_
  std::condition_variable has_room_;
  std::string pending_;
  bool writer_idle_ = false;  // the writer waits for a line: the next one notifies it
  bool stopping_ = false;
  std::mutex write_mutex_;  // one write(2) sequence at a time, in order
  std::thread writer_;
};

}  // namespace turnout::server
