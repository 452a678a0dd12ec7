#include "ledger/queued_ledger.hpp"

#include "ledger/rollup.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <random>

namespace turnout::ledger {
namespace {

std::string random_key_prefix() {
  std::random_device entropy;
  const std::uint64_t high = entropy();
  const std::uint64_t low = entropy();
  return fmt::format("{:016x}", (high << 32) | low);
}

// Callbacks are supposed to only hand off; one that throws anyway must not take the
// writer thread (and every later record) down with it.
// Records deleted per retention transaction: small enough that the writer is back to
// committing calls within milliseconds.
constexpr std::uint64_t kPruneChunk = 5'000;

void notify(const Ledger::DurableCallback& on_durable, const Result<void>& outcome) noexcept {
  try {
    if (on_durable) {
      on_durable(outcome);
    }
  } catch (...) {
  }
}

}  // namespace

QueuedLedger::QueuedLedger(std::unique_ptr<Backend> backend, const LedgerOptions& options)
    : backend_(std::move(backend)), options_(options), key_prefix_(random_key_prefix()) {
  writer_ = std::thread([this] { run_writer(); });
}

QueuedLedger::~QueuedLedger() { close(); }

void QueuedLedger::append(CallRecord record, DurableCallback on_durable) {
  {
    std::lock_guard lock(mutex_);
    if (!closing_) {
      queue_.push_back(Pending{std::move(record), std::move(on_durable)});
      queued_.notify_one();
      return;
    }
  }
  notify(on_durable, make_error("ledger is closed; record not written"));
}

Result<StatsReport> QueuedLedger::stats(const StatsQuery& query) { return backend_->stats(query); }

Result<SeriesReport> QueuedLedger::series(const SeriesQuery& query) { return backend_->series(query); }

LedgerHealth QueuedLedger::health() const {
  std::lock_guard lock(mutex_);
  return health_;
}

void QueuedLedger::close() {
  std::call_once(close_once_, [this] {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
    }
    queued_.notify_one();
    writer_.join();
  });
}

void QueuedLedger::run_writer() {
  WriterState state;
  state.next_prune = std::chrono::steady_clock::now();
  for (;;) {
    const bool last_round = take_queued(state);
    if (!state.unwritten.empty()) {
      write_round(state);
    }
    if (last_round) {
      return;  // a backlog still failing here is lost: there is no later round to retry in
    }
    prune_expired(state);
  }
}

void QueuedLedger::prune_expired(WriterState& state) {
  const auto now = std::chrono::steady_clock::now();
  if (now < state.next_prune) {
    return;
  }
  if (!state.pruning_records) {
    // Once per check: second roll-ups older than their lifetime (a failure waits for the next check).
    (void)backend_->prune_second_rollups(unix_now() - kSecondRollupLifetime);
    if (options_.retention.count() <= 0) {
      state.next_prune = now + options_.retention_check_interval;
      return;
    }
  }
  const double cutoff = unix_now() - static_cast<double>(options_.retention.count());
  auto pruned = backend_->prune_before(cutoff, kPruneChunk);
  state.pruning_records = pruned && *pruned == kPruneChunk;
  if (!pruned) {
    state.next_prune = now + options_.retry_interval;  // the write path reports the database's health
  } else if (*pruned < kPruneChunk) {
    state.next_prune = now + options_.retention_check_interval;
  }  // else: more to delete; the next round goes on right away
}

bool QueuedLedger::take_queued(WriterState& state) {
  std::unique_lock lock(mutex_);
  const auto has_work = [this] { return closing_ || !queue_.empty(); };
  if (!state.unwritten.empty()) {
    queued_.wait_for(lock, options_.retry_interval, has_work);
  } else {
    queued_.wait_until(lock, state.next_prune, has_work);
  }
  const std::size_t count = std::min(queue_.size(), std::max<std::size_t>(options_.max_batch, 1));
  state.unwritten.reserve(state.unwritten.size() + count);
  state.callbacks.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    Pending& pending = queue_[i];
    state.unwritten.push_back(
        KeyedRecord{fmt::format("{}-{:016x}", key_prefix_, ++state.next_key), std::move(pending.record)});
    state.callbacks.push_back(std::move(pending.on_durable));
  }
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(count));
  return closing_ && queue_.empty();
}

void QueuedLedger::write_round(WriterState& state) {
  const Result<void> written = backend_->write_batch(state.unwritten);
  Result<void> outcome;
  if (written) {
    state.unwritten.clear();
  } else {
    outcome = make_error(fmt::format("ledger write failed (record kept for retry): {}", written.error().message));
    if (state.unwritten.size() > options_.max_backlog) {
      const std::size_t excess = state.unwritten.size() - options_.max_backlog;
      state.unwritten.erase(state.unwritten.begin(), state.unwritten.begin() + static_cast<std::ptrdiff_t>(excess));
      state.dropped += excess;
    }
  }
  record_health(written, state);
  for (const DurableCallback& on_durable : state.callbacks) {
    notify(on_durable, outcome);
  }
  state.callbacks.clear();
}

void QueuedLedger::record_health(const Result<void>& written, const WriterState& state) {
  LedgerHealth health;
  if (!written) {
    health.healthy = false;
    health.reason = fmt::format("ledger not writable: {} ({} records waiting for retry", written.error().message,
                                state.unwritten.size());
    if (state.dropped > 0) {
      health.reason += fmt::format(", {} dropped", state.dropped);
    }
    health.reason += ")";
  }
  std::lock_guard lock(mutex_);
  health_ = std::move(health);
}

}  // namespace turnout::ledger
