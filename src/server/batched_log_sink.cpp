#include "server/batched_log_sink.hpp"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <poll.h>
#include <unistd.h>

namespace turnout::server {

struct BatchedLogSink::State {
  explicit State(int descriptor) : fd(descriptor) {}

  const int fd;
  std::mutex mutex;  // guards the fields below up to `carry`
  std::condition_variable has_lines;  // the writer waits on it only when writer_idle
  std::condition_variable has_room;
  std::condition_variable progress;  // flush() and the destructor wait on it
  std::string pending;
  bool writer_idle = false;  // the writer waits for a line: the next one notifies it
  bool stopping = false;
  bool finished = false;  // the writer wrote the last batch and returns
  std::uint64_t flushes_asked = 0;
  std::uint64_t flushes_done = 0;  // every line logged before flush number n is handled
  std::uint64_t dropped = 0;
  // The writer's own: the rest of a line whose beginning is on the descriptor.
  std::string carry;

  void run();
  void write_lines(const std::string& batch);
  // Writes bytes [written, size); false when the descriptor refuses them (written then
  // says how far it got).
  bool write_from(const std::string& bytes, std::size_t& written) const;
};

BatchedLogSink::BatchedLogSink(int fd, std::chrono::milliseconds shutdown_wait)
    : state_(std::make_shared<State>(fd)), shutdown_wait_(shutdown_wait) {
  writer_ = std::thread([state = state_] { state->run(); });
}

BatchedLogSink::~BatchedLogSink() {
  std::unique_lock lock(state_->mutex);
  state_->stopping = true;
  state_->writer_idle = false;
  state_->has_lines.notify_one();
  state_->has_room.notify_all();
  const bool finished =
      state_->progress.wait_for(lock, shutdown_wait_, [&] { return state_->finished; });
  lock.unlock();
  // A writer blocked in write(2) on a stalled descriptor keeps the state alive by itself.
  if (finished)
    writer_.join();
  else
    writer_.detach();
}

void BatchedLogSink::log(const spdlog::details::log_msg& msg) {
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  if (s.pending.size() >= kMaxPendingBytes)
    s.has_room.wait(lock, [&] { return s.pending.size() < kMaxPendingBytes || s.stopping; });
  s.pending.append(msg.payload.data(), msg.payload.size());
  s.pending.push_back('\n');
  if (!s.writer_idle) return;
  s.writer_idle = false;  // one notify per idle spell: later lines find the writer awake
  lock.unlock();
  s.has_lines.notify_one();
}

void BatchedLogSink::flush() {
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  const std::uint64_t ticket = ++s.flushes_asked;
  if (s.writer_idle) {
    s.writer_idle = false;
    s.has_lines.notify_one();
  }
  s.progress.wait_for(lock, shutdown_wait_, [&] { return s.flushes_done >= ticket || s.finished; });
}

void BatchedLogSink::set_pattern(const std::string&) {}

void BatchedLogSink::set_formatter(std::unique_ptr<spdlog::formatter>) {}

std::uint64_t BatchedLogSink::dropped_lines() const {
  std::lock_guard lock(state_->mutex);
  return state_->dropped;
}

void BatchedLogSink::State::run() {
  std::string batch;
  int empty_turns = kIdleTurns;  // none gathered yet: wait for the first line
  for (;;) {
    bool urgent = false;  // a flush or the stop: write now, without gathering
    {
      std::unique_lock lock(mutex);
      const auto nothing_to_do = [&] { return !stopping && pending.empty() && flushes_asked == flushes_done; };
      if (nothing_to_do() && empty_turns >= kIdleTurns) {
        // Marked idle again on every wake-up that finds nothing (a spurious one, or a
        // flush that found nothing), so no later line can find it unmarked.
        while (nothing_to_do()) {
          writer_idle = true;
          has_lines.wait(lock);
        }
        writer_idle = false;
        empty_turns = 0;
      }
      urgent = stopping || flushes_asked != flushes_done;
    }
    // Let the lines of the next turn join this write. A sleep, not a timed wait on
    // has_lines: no logger notifies a writer that is not idle, so nothing could end the
    // wait early, and the wait would cost a futex call and a contended re-lock per batch.
    if (!urgent) std::this_thread::sleep_for(kGatherTime);
    std::uint64_t answered = 0;
    bool stop = false;
    {
      std::lock_guard lock(mutex);
      batch.swap(pending);
      answered = flushes_asked;
      stop = stopping;
    }
    if (batch.empty()) {
      ++empty_turns;
    } else {
      empty_turns = 0;
      has_room.notify_all();  // no syscall unless a logger waits for room
      write_lines(batch);
      batch.clear();  // keeps its capacity for the next swap
    }
    std::lock_guard lock(mutex);
    const bool notify = flushes_done != answered || (stop && pending.empty());
    flushes_done = answered;
    if (stop && pending.empty()) finished = true;
    if (notify) progress.notify_all();
    if (finished) return;
  }
}

void BatchedLogSink::State::write_lines(const std::string& batch) {
  const auto count_lines = [](const std::string& bytes, std::size_t from) {
    return static_cast<std::uint64_t>(std::count(bytes.begin() + static_cast<std::ptrdiff_t>(from), bytes.end(), '\n'));
  };
  if (!carry.empty()) {
    std::size_t written = 0;
    const bool ok = write_from(carry, written);
    carry.erase(0, written);
    if (!ok) {  // the descriptor still refuses: the new lines could only be cut or lost
      std::lock_guard lock(mutex);
      dropped += count_lines(batch, 0);
      return;
    }
  }
  std::size_t written = 0;
  if (write_from(batch, written)) return;
  std::size_t rest = written;
  if (written > 0 && batch[written - 1] != '\n') {
    // A line is cut: keep its rest, so the next line written starts a line of its own.
    const std::size_t end = batch.find('\n', written) + 1;
    carry.assign(batch, written, end - written);
    rest = end;
  }
  std::lock_guard lock(mutex);
  dropped += count_lines(batch, rest);
}

bool BatchedLogSink::State::write_from(const std::string& bytes, std::size_t& written) const {
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n > 0) {
      written += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // A non-blocking descriptor (set so by whoever shares it) is full: wait as a blocking
      // one would; the shutdown does not wait for this.
      pollfd wait{fd, POLLOUT, 0};
      if (::poll(&wait, 1, -1) >= 0 || errno == EINTR) continue;
    }
    return false;  // EPIPE (serve ignores SIGPIPE), ENOSPC, EBADF...: the bytes cannot go anywhere
  }
  return true;
}

}  // namespace turnout::server
