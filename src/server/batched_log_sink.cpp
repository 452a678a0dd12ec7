#include "server/batched_log_sink.hpp"

#include <spdlog/pattern_formatter.h>

#include <cerrno>
#include <unistd.h>

namespace turnout::server {

BatchedLogSink::BatchedLogSink(int fd)
    : fd_(fd), formatter_(std::make_unique<spdlog::pattern_formatter>()), writer_([this] { run_writer(); }) {}

BatchedLogSink::~BatchedLogSink() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  has_lines_.notify_one();
  writer_.join();
  flush();
}

void BatchedLogSink::log(const spdlog::details::log_msg& msg) {
  spdlog::memory_buf_t line;
  std::unique_lock lock(mutex_);
  formatter_->format(msg, line);
  has_room_.wait(lock, [&] { return pending_.size() < kMaxPendingBytes || stopping_; });
  const bool writer_idle = pending_.empty();  // the writer sleeps only on an empty buffer
  pending_.append(line.data(), line.size());
  if (writer_idle) has_lines_.notify_one();
}

void BatchedLogSink::flush() {
  std::lock_guard write_lock(write_mutex_);
  std::string batch;
  {
    std::lock_guard lock(mutex_);
    batch.swap(pending_);
  }
  has_room_.notify_all();
  write_all(batch);
}

void BatchedLogSink::set_pattern(const std::string& pattern) {
  set_formatter(std::make_unique<spdlog::pattern_formatter>(pattern));
}

void BatchedLogSink::set_formatter(std::unique_ptr<spdlog::formatter> formatter) {
  std::lock_guard lock(mutex_);
  formatter_ = std::move(formatter);
}

void BatchedLogSink::run_writer() {
  std::string batch;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      has_lines_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (stopping_) return;  // the destructor writes the rest
      // Let the lines of the next millisecond join this write.
      has_lines_.wait_for(lock, kGatherTime, [&] { return stopping_; });
    }
    std::lock_guard write_lock(write_mutex_);
    {
      std::lock_guard lock(mutex_);
      batch.swap(pending_);
    }
    has_room_.notify_all();
    write_all(batch);
    batch.clear();  // keeps its capacity for the next swap
  }
}

void BatchedLogSink::write_all(const std::string& bytes) {
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stdout gone: the lines cannot go anywhere (spdlog dropped them too)
    written += static_cast<std::size_t>(n);
  }
}

}  // namespace turnout::server
