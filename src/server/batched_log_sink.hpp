#pragma once
// The access log's sink: lines are formatted on the calling thread into a buffer, and one
// background thread writes what has gathered in one write(2), about a millisecond after
// the first line of a batch. spdlog's async logger woke its thread for every line (a futex
// wake-up and a write per request: ~7% of a call's CPU at the 300-token load, issue 16);
// this wakes the writer once per batch and never while idle. A line reaches the file
// descriptor within ~1 ms; flush() (shutdown) writes everything at once. Memory is
// bounded: past kMaxPendingBytes a caller waits for the writer, as the async logger's
// `block` overflow policy did.
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

  explicit BatchedLogSink(int fd);  // not owned (stdout: 1)
  ~BatchedLogSink() override;  // writes what is pending, then stops the writer
  BatchedLogSink(const BatchedLogSink&) = delete;
  BatchedLogSink& operator=(const BatchedLogSink&) = delete;

  void log(const spdlog::details::log_msg& msg) override;
  void flush() override;
  void set_pattern(const std::string& pattern) override;
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override;

 private:
  void run_writer();
  void write_all(const std::string& bytes);

  const int fd_;
  std::mutex mutex_;  // guards the fields below
  std::condition_variable has_lines_;
  std::condition_variable has_room_;
  std::unique_ptr<spdlog::formatter> formatter_;
  std::string pending_;
  bool stopping_ = false;
  std::mutex write_mutex_;  // one write(2) sequence at a time, in order
  std::thread writer_;
};

}  // namespace turnout::server
