#include "server/batched_log_sink.hpp"

#include <cerrno>
#include <unistd.h>

namespace turnout::server {

BatchedLogSink::BatchedLogSink(int fd) : fd_(fd), writer_([this] { run_writer(); }) {}

BatchedLogSink::~BatchedLogSink() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  has_lines_.notify_one();
  has_room_.notify_all();
  writer_.join();
  flush();
}

void BatchedLogSink::log(const spdlog::details::log_msg& msg) {
  std::unique_lock lock(mutex_);
  if (pending_.size() >= kMaxPendingBytes)
    has_room_.wait(lock, [&] { return pending_.size() < kMaxPendingBytes || stopping_; });
  pending_.append(msg.payload.data(), msg.payload.size());
  pending_.push_back('\n');
  if (!writer_idle_) return;
  writer_idle_ = false;  // one notify per idle spell: later lines find the writer awake
  lock.unlock();
  has_lines_.notify_one();
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

void BatchedLogSink::set_pattern(const std::string&) {}

void BatchedLogSink::set_formatter(std::unique_ptr<spdlog::formatter>) {}

void BatchedLogSink::run_writer() {
  std::string batch;
  int empty_turns = kIdleTurns;  // none gathered yet: wait for the first line
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (stopping_) return;  // the destructor writes the rest
      if (pending_.empty() && empty_turns >= kIdleTurns) {
        // Marked idle again on every wake-up that finds nothing: a flush() may take the
        // line whose logger cleared the mark, and with the mark left clear no later
        // logger would notify this writer.
        while (!stopping_ && pending_.empty()) {
          writer_idle_ = true;
          has_lines_.wait(lock);
        }
        writer_idle_ = false;
        if (stopping_) return;
        empty_turns = 0;
      }
    }
    // Let the lines of the next millisecond join this write. A sleep, not a timed wait on
    // has_lines_: no logger notifies a writer that is not idle, so nothing could end the
    // wait early, and the wait would cost a futex call and a contended re-lock per batch.
    std::this_thread::sleep_for(kGatherTime);
    std::lock_guard write_lock(write_mutex_);
    {
      std::lock_guard lock(mutex_);
      batch.swap(pending_);
    }
    if (batch.empty()) {
      ++empty_turns;
      continue;
    }
    empty_turns = 0;
    has_room_.notify_all();  // no syscall unless a logger waits for room
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
