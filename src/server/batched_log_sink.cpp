#include "server/batched_log_sink.hpp"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <atomic>
#include <mutex>
#include <optional>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace turnout::server {

struct BatchedLogSink::State {
  explicit State(int descriptor) : fd(descriptor < 0 ? -1 : ::fcntl(descriptor, F_DUPFD_CLOEXEC, 3)) {}
  ~State() {
    if (fd >= 0) ::close(fd);
  }
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  const int fd;  // the sink's own duplicate; -1 when there is none (every line dropped)
  std::mutex mutex;  // guards the fields below up to `carry`
  std::condition_variable has_lines;  // the writer waits on it only when writer_idle
  std::condition_variable has_room;
  std::condition_variable progress;  // flush() and stop() wait on it
  std::string pending;
  bool writer_idle = false;  // the writer waits for a line: the next one notifies it
  bool stopping = false;
  bool finished = false;  // the writer wrote the last batch and returns
  std::uint64_t flushes_asked = 0;
  std::uint64_t flushes_done = 0;  // every line logged before flush number n is handled
  std::uint64_t dropped = 0;
  std::uint64_t accepted_bytes = 0;  // appended to pending
  std::uint64_t dropped_bytes = 0;  // of accepted lines the writer dropped
  // Batches the writer took from pending: only a take makes room.
  std::uint64_t takes = 0;
  // `takes` when a caller waiting for room saw no take for kRoomWait: later callers drop
  // at once until the writer takes the next batch (one caller's wait per batch, not one
  // per chunk a slow reader drains).
  std::optional<std::uint64_t> no_room_at;
  std::uint64_t room_waits = 0;  // callers that waited for room (room_waits())
  // settled() when flush() or stop() gave up after a stall wait with no progress: later
  // waits do not wait again until the writer settles more.
  std::optional<std::uint64_t> stalled_at;
  // Once stopping, when a wait first lasted a whole stall wait: every later wait of the
  // stop ends by it + shutdown_cap. A flush's budget is its own.
  std::optional<std::chrono::steady_clock::time_point> slow_since;
  // The writer's own: the rest of a line whose beginning is on the descriptor.
  std::string carry;
  // Bumped by the writer after each write(2), read without the mutex: progress, not totals.
  std::atomic<std::uint64_t> bytes_written{0};
  std::atomic<std::uint64_t> write_calls{0};

  // Bytes the writer is done with, written or dropped (a descriptor that turns to EPIPE
  // makes progress too: it drops). Under the mutex (dropped_bytes).
  std::uint64_t settled() const { return bytes_written.load(std::memory_order_relaxed) + dropped_bytes; }

  // Touches only this state, libc and the allocator: a detached writer runs on during
  // spdlog::shutdown() and static destruction, so it must never call spdlog or a metric.
  void run();
  void write_lines(const std::string& batch);
  // Writes bytes [written, size); false when the descriptor refuses them (written then
  // says how far it got).
  bool write_from(const std::string& bytes, std::size_t& written);
};

BatchedLogSink::BatchedLogSink(int fd, std::chrono::milliseconds stall_wait, std::chrono::milliseconds shutdown_cap)
    : state_(std::make_shared<State>(fd)), stall_wait_(stall_wait), shutdown_cap_(shutdown_cap) {
  if (state_->fd >= 0) writer_ = std::thread([state = state_] { state->run(); });
}

BatchedLogSink::~BatchedLogSink() { stop(); }

template <class Done>
bool BatchedLogSink::wait_for_writer(std::unique_lock<std::mutex>& lock, Done done) {
  State& s = *state_;
  if (done()) return true;
  std::uint64_t seen = s.settled();
  if (s.stalled_at == seen) return false;  // found stalled before, no progress since
  // The stop's budget is shared by all its waits; a flush's ends with it, so a reader that
  // was slow once does not cut every later flush short.
  std::optional<std::chrono::steady_clock::time_point> flush_slow_since;
  std::optional<std::chrono::steady_clock::time_point>& slow_since = s.stopping ? s.slow_since : flush_slow_since;
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    auto until = now + stall_wait_;
    if (slow_since) until = std::min(until, *slow_since + shutdown_cap_);
    if (until <= now) return false;
    if (s.progress.wait_until(lock, until, done)) return true;
    const std::uint64_t settled = s.settled();
    if (settled == seen) {
      s.stalled_at = settled;
      return false;
    }
    seen = settled;
    if (!slow_since) slow_since = now;
  }
}

BatchedLogSink::Stopped BatchedLogSink::stop() {
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  if (stopped_) return *stopped_;
  s.stopping = true;
  s.writer_idle = false;
  s.has_lines.notify_one();
  s.has_room.notify_all();  // a caller waiting for room drops its line instead
  Stopped result;
  if (writer_.joinable()) {
    result.writer_left = !wait_for_writer(lock, [&] { return s.finished; });
    if (result.writer_left) {
      const std::uint64_t settled = s.settled();
      result.unwritten_bytes = s.accepted_bytes > settled ? s.accepted_bytes - settled : 0;
    }
  }
  result.dropped_lines = s.dropped;
  stopped_ = result;
  lock.unlock();
  // A writer blocked in write(2) on a stalled descriptor keeps the state alive by itself.
  if (!writer_.joinable()) return result;
  if (result.writer_left)
    writer_.detach();
  else
    writer_.join();
  return result;
}

std::string BatchedLogSink::Stopped::summary() const {
  if (dropped_lines == 0 && !writer_left) return {};
  std::string line = "turnout: access log: " + std::to_string(dropped_lines) + " lines dropped";
  if (writer_left) line += ", " + std::to_string(unwritten_bytes) + " bytes left unwritten (stdout stalled)";
  line += '\n';
  return line;
}

void BatchedLogSink::log(const spdlog::details::log_msg& msg) {
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  if (s.fd < 0 || s.stopping) {
    ++s.dropped;
    return;
  }
  if (s.pending.size() >= kMaxPendingBytes) {
    const std::uint64_t seen = s.takes;
    const auto has_room = [&] { return s.pending.size() < kMaxPendingBytes || s.stopping; };
    // A caller that found the writer taking no batch spares the next ones the wait.
    const bool drop_at_once = s.no_room_at == seen;
    if (!drop_at_once) ++s.room_waits;
    if (drop_at_once || !s.has_room.wait_for(lock, kRoomWait, has_room) || s.stopping) {
      if (!has_room() && s.takes == seen) s.no_room_at = seen;
      ++s.dropped;
      return;
    }
  }
  s.pending.append(msg.payload.data(), msg.payload.size());
  s.pending.push_back('\n');
  s.accepted_bytes += msg.payload.size() + 1;
  if (!s.writer_idle) return;
  s.writer_idle = false;  // one notify per idle spell: later lines find the writer awake
  lock.unlock();
  s.has_lines.notify_one();
}

void BatchedLogSink::flush() {
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  if (s.fd < 0) return;  // no writer; writer_ itself is stop()'s alone (it may be detaching it)
  const std::uint64_t ticket = ++s.flushes_asked;
  if (s.writer_idle) {
    s.writer_idle = false;
    s.has_lines.notify_one();
  }
  wait_for_writer(lock, [&] { return s.flushes_done >= ticket || s.finished; });
}

void BatchedLogSink::set_pattern(const std::string&) {}

void BatchedLogSink::set_formatter(std::unique_ptr<spdlog::formatter>) {}

std::uint64_t BatchedLogSink::dropped_lines() const {
  std::lock_guard lock(state_->mutex);
  return state_->dropped;
}

std::uint64_t BatchedLogSink::room_waits() const {
  std::lock_guard lock(state_->mutex);
  return state_->room_waits;
}

std::uint64_t BatchedLogSink::write_calls() const { return state_->write_calls.load(std::memory_order_relaxed); }

bool BatchedLogSink::writer_idle() const {
  std::lock_guard lock(state_->mutex);
  return state_->writer_idle;
}

void BatchedLogSink::State::run() {
  std::string batch;
  int empty_turns = kIdleTurns;  // none gathered yet: wait for the first line
  auto turn_start = std::chrono::steady_clock::now();
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
        turn_start = std::chrono::steady_clock::now();
      }
      urgent = stopping || flushes_asked != flushes_done;
    }
    // Let the lines of the next turn join this write. A sleep, not a timed wait on
    // has_lines: no logger notifies a writer that is not idle, so nothing could end the
    // wait early, and the wait would cost a futex call and a contended re-lock per batch.
    // Until kGatherTime after the last turn began, not after its write: a fixed cadence, so
    // a line waits at most one gather plus a write.
    if (!urgent) std::this_thread::sleep_until(turn_start + kGatherTime);
    turn_start = std::chrono::steady_clock::now();
    std::uint64_t answered = 0;
    bool stop = false;
    {
      std::lock_guard lock(mutex);
      batch.swap(pending);
      if (!batch.empty()) ++takes;
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
    std::unique_lock lock(mutex);
    const bool last = stop && pending.empty();  // stopping: log() appends no more
    if (last && !carry.empty()) {
      // A line cut by the last failed write, with no line after it to complete it first:
      // one more try, else the file would end in a fragment an appending restart joins.
      lock.unlock();
      std::size_t written = 0;
      const bool ok = write_from(carry, written);
      lock.lock();
      if (!ok) {
        ++dropped;
        dropped_bytes += carry.size() - written;
      }
      carry.clear();
    }
    const bool notify = flushes_done != answered || last;
    flushes_done = answered;
    if (last) finished = true;
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
      dropped_bytes += batch.size();
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
  dropped_bytes += batch.size() - rest;
}

bool BatchedLogSink::State::write_from(const std::string& bytes, std::size_t& written) {
  while (written < bytes.size()) {
    std::size_t end = bytes.size();
    if (end - written > kWriteChunk) {
      end = written + kWriteChunk;
      const std::size_t newline = bytes.rfind('\n', end - 1);
      if (newline != std::string::npos && newline >= written) end = newline + 1;
    }
    write_calls.fetch_add(1, std::memory_order_relaxed);
    const ssize_t n = ::write(fd, bytes.data() + written, end - written);
    if (n > 0) {
      written += static_cast<std::size_t>(n);
      bytes_written.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // A non-blocking descriptor (set so by whoever shares it) is full: wait as a blocking
      // one would; stop() gives up on a writer that waits here without progress.
      pollfd wait{fd, POLLOUT, 0};
      if (::poll(&wait, 1, -1) >= 0 || errno == EINTR) continue;
    }
    return false;  // EPIPE (serve ignores SIGPIPE), ENOSPC, EBADF...: the bytes cannot go anywhere
  }
  return true;
}

}  // namespace turnout::server
