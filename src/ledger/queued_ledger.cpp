#include "ledger/queued_ledger.hpp"

#include "ledger/installation_secret.hpp"
#include "ledger/rollup.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <random>

namespace turnout::ledger {
namespace {

using SteadyClock = std::chrono::steady_clock;

std::string random_key_prefix() {
  std::random_device entropy;
  const std::uint64_t high = entropy();
  const std::uint64_t low = entropy();
  return fmt::format("{:016x}", (high << 32) | low);
}

// Fold requests waiting for the writer at most; more readers are answered at once (their
// roll-ups reported as possibly stale) so a stalled writer cannot grow the list.
constexpr std::size_t kMaxFoldRequests = 1024;

// The longest wait between tries of a fold (or a journal replay) that keeps failing (a row
// no fold can count fails the same way every time; a busy database clears within seconds).
constexpr std::chrono::seconds kMaxFoldRetryDelay{60};

// Records deleted per retention transaction: small enough that the writer is back to
// committing calls within milliseconds.
constexpr std::uint64_t kPruneChunk = 5'000;

// Callbacks are supposed to only hand off; one that throws anyway must not take the
// writer thread (and every later record) down with it.
void notify(const Ledger::DurableCallback& on_durable, const Result<void>& outcome) noexcept {
  try {
    if (on_durable) {
      on_durable(outcome);
    }
  } catch (...) {
  }
}

void answer_all(std::vector<Ledger::FoldCallback>& waiters, const FoldOutcome& outcome) noexcept {
  for (const Ledger::FoldCallback& on_folded : waiters) {
    try {
      if (on_folded) on_folded(outcome);
    } catch (...) {
    }
  }
  waiters.clear();
}

// Stores records replayed from journals: into the database in chunks of max_batch, a chunk
// it refuses into the spool (when there is one). Counts in `stored` those the database took.
Result<void> store_replayed(Backend& backend, Spool* spool, const LedgerOptions& options,
                            std::vector<KeyedRecord> records, std::size_t* stored = nullptr) {
  if (options.retention.count() > 0) {
    // Already deleted by retention, or about to be: not brought back.
    const double cutoff = unix_now() - static_cast<double>(options.retention.count());
    std::erase_if(records, [&](const KeyedRecord& keyed) { return keyed.record.timestamp < cutoff; });
  }
  const std::size_t chunk = std::max<std::size_t>(options.max_batch, 1);
  for (std::size_t at = 0; at < records.size(); at += chunk) {
    const std::span<const KeyedRecord> part(records.data() + at, std::min(chunk, records.size() - at));
    if (auto written = backend.write_batch(part); written) {
      if (stored) *stored += part.size();
    } else {
      if (!spool) return written.error();
      if (auto spooled = spool->store(part); !spooled) {
        return make_error(fmt::format("{}; the spool did not take them either: {}", written.error().message,
                                      spooled.error().message));
      }
    }
  }
  return {};
}

// What the gateway says at start about the replay (counts and paths, never a record).
std::vector<std::string> replay_notes(const ReplayReport& report) {
  std::vector<std::string> notes;
  if (report.journals + report.damaged > 0) {
    notes.push_back(fmt::format("ledger journals: {} records replayed from {} journals a stopped process left",
                                report.records, report.journals + report.damaged));
  }
  if (!report.problem.empty()) notes.push_back("ledger journals: " + report.problem);
  return notes;
}

}  // namespace

Result<std::unique_ptr<QueuedLedger>> QueuedLedger::open(std::unique_ptr<Backend> backend,
                                                         const LedgerOptions& options,
                                                         const std::string& journal_base) {
  auto candidate = new_installation_secret();
  if (!candidate) {
    return candidate.error();
  }
  auto secret = backend->installation_secret(*candidate);
  if (!secret) {
    return secret.error();
  }
  std::unique_ptr<Spool> spool;
  if (!options.spool_path.empty()) {
    spool = std::make_unique<Spool>(options.spool_path, options.spool_max_records);
    if (auto opened = spool->open_existing(); !opened) {
      return opened.error();
    }
  }
  ReplayReport replayed;
  if (!journal_base.empty()) {
    // Before the writer starts and before anything is served: the calls a killed process
    // answered from its journal reach the ledger (or the spool) first. Their keys make a
    // record already committed a no-op, hold settlement included. A journal that could not
    // be stored stays as it is and is never taken for use meanwhile (Journal::open skips
    // it); the writer tries it again while the gateway runs (retry_replay).
    replayed = replay_orphaned_journals(journal_base, [&](std::vector<KeyedRecord> records) {
      return store_replayed(*backend, spool.get(), options, std::move(records));
    });
  }
  return std::unique_ptr<QueuedLedger>(new QueuedLedger(std::move(backend), options, std::move(*secret),
                                                        std::move(spool), journal_base, replayed));
}

std::vector<std::string> QueuedLedger::open_notes() const { return open_notes_; }

QueuedLedger::QueuedLedger(std::unique_ptr<Backend> backend, const LedgerOptions& options,
                           std::string installation_secret, std::unique_ptr<Spool> spool,
                           std::string journal_base, const ReplayReport& replayed)
    : backend_(std::move(backend)),
      options_(options),
      key_prefix_(random_key_prefix()),
      installation_secret_(std::move(installation_secret)),
      spool_(std::move(spool)),
      journal_base_(std::move(journal_base)),
      open_notes_(replay_notes(replayed)),
      replay_problem_at_open_(replayed.problem),
      replay_retry_at_open_(replayed.left > 0) {
  // health() tells of a spool left behind from the start, not only once the writer runs.
  WriterState initial;
  initial.spooling = spool_ && spool_->size() > 0;
  initial.replay_problem = replay_problem_at_open_;
  update_health(initial);
  writer_ = std::thread([this] { run_writer(); });
}

QueuedLedger::~QueuedLedger() { close(); }

void QueuedLedger::append(CallRecord record, DurableCallback on_durable) {
  std::vector<CallRecord> one;
  one.push_back(std::move(record));
  append_batch(std::move(one), std::move(on_durable));
}

void QueuedLedger::append_batch(std::vector<CallRecord> records, DurableCallback on_durable) {
  std::vector<KeyedRecord> unkeyed;
  unkeyed.reserve(records.size());
  for (CallRecord& record : records) unkeyed.push_back(KeyedRecord{{}, std::move(record)});
  append_keyed(std::move(unkeyed), nullptr, 0, std::move(on_durable));
}

void QueuedLedger::append_keyed(std::vector<KeyedRecord> records, std::shared_ptr<Journal> journal,
                                std::uint64_t last_seq, DurableCallback on_durable) {
  if (records.empty()) {
    notify(on_durable, Result<void>());
    return;
  }
  {
    std::lock_guard lock(mutex_);
    if (!closing_) {
      // The writer sleeps only on an empty queue: a batch added to a non-empty one is
      // taken by a round already due, without a wake-up of its own.
      const bool writer_may_sleep = queue_.empty();
      const std::size_t last = records.size() - 1;
      appended_ += records.size();
      for (std::size_t i = 0; i < last; ++i) queue_.push_back(Pending{std::move(records[i]), {}, false, nullptr, 0});
      queue_.push_back(Pending{std::move(records[last]), std::move(on_durable), true, std::move(journal), last_seq});
      if (writer_may_sleep) queued_.notify_one();
      return;
    }
  }
  notify(on_durable, make_error("ledger is closed; record not written"));
}

std::shared_ptr<Journal> QueuedLedger::open_journal() {
  if (journal_base_.empty() || !options_.journal) return nullptr;
  // Without a journal file the loop waits for each commit, as without the hand-off.
  auto journal = Journal::open(journal_base_, options_.journal_bytes);
  std::lock_guard lock(mutex_);
  if (!journal) {
    // Told through health() (and so in the start-up log and /health), as long as it lasts.
    ++journals_missing_;
    journal_open_error_ = journal.error().message;
    return nullptr;
  }
  if (closing_) return nullptr;
  journals_.push_back(*journal);
  return *journal;
}

Result<StatsReport> QueuedLedger::stats(const StatsQuery& query) { return backend_->stats(query); }

Result<SeriesReport> QueuedLedger::series(const SeriesQuery& query) { return backend_->series(query); }

void QueuedLedger::request_fold(FoldCallback on_folded) {
  FoldOutcome at_once;
  {
    std::lock_guard lock(mutex_);
    if (!fold_trouble_.empty()) {
      at_once = FoldOutcome{false, fold_trouble_};
    } else if (health_.spooled > 0) {
      // The spooled calls are not in the database, so no fold can count them yet.
      at_once = FoldOutcome{false, fmt::format("{} calls are spooled, not yet in the ledger database", health_.spooled)};
    } else if (!backend_->folds_rollups_later() || writer_stopped_) {
      // Nothing to wait for: the roll-ups are written with each batch, or the last round folded.
    } else if (fold_requests_.size() >= kMaxFoldRequests) {
      at_once = FoldOutcome{false, "too many readers are waiting for the ledger writer's fold"};
    } else {
      // Answered by the fold of the round that takes the last record appended before this
      // point (a call answered from its journal is queued, not yet committed, before its
      // response goes out, and /stats read after that response must count it) — not by
      // one that empties the queue, which records arriving faster than a round takes them
      // would put off without end.
      fold_requests_.push_back(FoldRequest{appended_, std::move(on_folded)});
      queued_.notify_one();
      return;
    }
  }
  std::vector<FoldCallback> one;
  one.push_back(std::move(on_folded));
  answer_all(one, at_once);
}

LedgerHealth QueuedLedger::health() const {
  std::lock_guard lock(mutex_);
  LedgerHealth health = health_;
  // The journal hand-off off for some loops: healthy, but their calls wait for commits.
  std::size_t off = journals_missing_;
  std::string why = journal_open_error_;
  for (const auto& journal : journals_) {
    health.journal_write_failures += journal->failed_writes();
    if (std::string reason = journal->off_reason(); !reason.empty()) {
      ++off;
      if (why.empty()) why = std::move(reason);
    }
  }
  health.journals_off = off;
  if (off > 0) {
    const std::string text = fmt::format("ledger journal hand-off off for {} of {} event loops (their calls wait for "
                                         "the commit): {}",
                                         off, journals_.size() + journals_missing_, why);
    health.degraded = health.degraded.empty() ? text : health.degraded + "; " + text;
  }
  return health;
}

void QueuedLedger::close() {
  std::call_once(close_once_, [this] {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
    }
    queued_.notify_one();
    writer_.join();
    // Everything queued is durable now: the journals hold nothing the next open must replay.
    std::vector<std::shared_ptr<Journal>> journals;
    {
      std::lock_guard lock(mutex_);
      journals.swap(journals_);
    }
    for (const auto& journal : journals) journal->reset_if_durable();
  });
}

void QueuedLedger::run_writer() {
  WriterState state;
  state.next_prune = SteadyClock::now();
  // A spool left behind (a crash, or a database that was away at the last stop) is
  // drained first; new records queue behind it.
  state.spooling = spool_ && spool_->size() > 0;
  state.next_drain = SteadyClock::now();
  state.folded_at = SteadyClock::now();
  state.replay_problem = replay_problem_at_open_;
  state.replay_retry = replay_retry_at_open_;
  state.replay_retry_delay = options_.retry_interval;  // the open's try was the first
  state.next_replay = SteadyClock::now() + state.replay_retry_delay;
  update_health(state);
  // What the catch-up at open could not fold (it does not stop the open) is retried here
  // first, and reported through health() while it fails.
  fold_when_due(state, true);
  for (;;) {
    const bool last_round = take_queued(state);
    if (!state.unwritten.empty()) {
      write_round(state);
    }
    if (last_round) {
      // A backlog still failing here is lost (its callers were told); spooled records
      // stay in the spool for the next start. Roll-ups a fold misses here are caught up
      // at the next open.
      fold_when_due(state, true);
      std::vector<FoldCallback> late;
      {
        std::lock_guard lock(mutex_);
        writer_stopped_ = true;
        for (FoldRequest& request : fold_requests_) late.push_back(std::move(request.on_folded));
        fold_requests_.clear();
      }
      answer_all(late, fold_outcome(state));
      return;
    }
    if (state.spooling && SteadyClock::now() >= state.next_drain) {
      drain_spool(state);
    }
    fold_when_due(state, false);
    prune_expired(state);
    retry_replay(state);
    // After this round's callers were told. A checkpoint that fails (readers in the way)
    // leaves the WAL as it was and is tried at a later round.
    (void)backend_->checkpoint_wal();
  }
}

void QueuedLedger::note_stored(WriterState& state, std::size_t stored) const {
  if (!backend_->folds_rollups_later() || stored == 0) {
    return;
  }
  if (state.unfolded == 0) {
    // A failed fold (the catch-up at open, with nothing stored yet) keeps its retry time.
    const auto due = SteadyClock::now() + options_.rollup_fold_interval;
    state.next_fold = state.fold_error.empty() ? due : std::max(state.next_fold, due);
  }
  state.unfolded += stored;
}

void QueuedLedger::fold_when_due(WriterState& state, bool now_anyway) {
  if (!backend_->folds_rollups_later()) {
    return;
  }
  const auto now = SteadyClock::now();
  if (!state.fold_error.empty() && !now_anyway && now < state.next_fold) {
    // A failing fold waits for its retry time however many calls wait or readers ask:
    // retried every round, it would take the writer thread (and the database) from the
    // batches. The readers are told why their figures lag.
    answer_all(state.fold_waiters, fold_outcome(state));
    return;
  }
  const bool asked = !state.fold_waiters.empty();
  const bool due = (state.unfolded > 0 || !state.fold_error.empty()) &&
                   (state.unfolded >= options_.rollup_fold_calls || now >= state.next_fold);
  if (!asked && !due && !now_anyway) {
    return;
  }
  // A failed fold leaves the watermark where it was: the next one (or the catch-up at the
  // next open) counts the same calls, once. It is retried after retry_interval, doubled
  // per failure up to kMaxFoldRetryDelay, and reported through health() meanwhile.
  if (auto folded = backend_->fold_rollups(); folded) {
    state.unfolded = 0;
    state.fold_error.clear();
    state.folded_at = SteadyClock::now();
    state.fold_retry_delay = {};
  } else {
    state.fold_error = folded.error().message;
    state.fold_retry_delay = std::clamp<SteadyClock::duration>(
        state.fold_retry_delay * 2, options_.retry_interval, std::max<SteadyClock::duration>(
                                                                  options_.retry_interval, kMaxFoldRetryDelay));
    state.next_fold = SteadyClock::now() + state.fold_retry_delay;
  }
  update_health(state);
  answer_all(state.fold_waiters, fold_outcome(state));
}

FoldOutcome QueuedLedger::fold_outcome(const WriterState& state) const {
  if (!state.fold_error.empty()) {
    return FoldOutcome{false, "the ledger roll-ups could not be folded: " + state.fold_error};
  }
  if (!state.unwritten.empty()) {
    return FoldOutcome{false, fmt::format("{} calls are waiting for the ledger database", state.unwritten.size())};
  }
  if (state.spooling && spool_ && spool_->size() > 0) {
    return FoldOutcome{false, fmt::format("{} calls are spooled, not yet in the ledger database", spool_->size())};
  }
  return FoldOutcome{};
}

void QueuedLedger::prune_expired(WriterState& state) {
  const auto now = SteadyClock::now();
  if (now < state.next_prune) {
    return;
  }
  if (!state.pruning_records) {
    // Once per check: second roll-ups older than their lifetime (a failure waits for the next check).
    (void)backend_->prune_second_rollups(unix_now() - kSecondRollupLifetime);
    if (options_.retention.count() <= 0 || !options_.delete_expired) {
      state.next_prune = now + options_.retention_check_interval;
      return;
    }
  }
  const double cutoff = unix_now() - static_cast<double>(options_.retention.count());
  // A failed fold is retried on its own clock (fold_when_due), not by every retention chunk.
  auto pruned = backend_->prune_before(cutoff, kPruneChunk, state.fold_error.empty());
  state.pruning_records = pruned && *pruned == kPruneChunk;
  if (!pruned) {
    state.next_prune = now + options_.retry_interval;  // the write path reports the database's health
  } else if (*pruned < kPruneChunk) {
    state.next_prune = now + options_.retention_check_interval;
  }  // else: more to delete; the next round goes on right away
}

bool QueuedLedger::take_queued(WriterState& state) {
  std::unique_lock lock(mutex_);
  const auto has_work = [this] { return closing_ || !queue_.empty() || !fold_requests_.empty(); };
  auto wake_at = state.next_prune;
  if (!state.unwritten.empty()) {
    wake_at = std::min(wake_at, SteadyClock::now() + options_.retry_interval);
  }
  if (state.unfolded > 0 || !state.fold_error.empty()) {
    wake_at = std::min(wake_at, state.next_fold);
  }
  if (state.spooling) {
    wake_at = std::min(wake_at, state.next_drain);
  }
  if (state.replay_retry) {
    wake_at = std::min(wake_at, state.next_replay);
  }
  queued_.wait_until(lock, wake_at, has_work);
  std::size_t count = std::min(queue_.size(), std::max<std::size_t>(options_.max_batch, 1));
  while (count < queue_.size() && !queue_[count - 1].ends_batch) ++count;
  state.unwritten.reserve(state.unwritten.size() + count);
  state.callbacks.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    Pending& pending = queue_[i];
    // A journaled record keeps the key its frame carries, so its replay is a no-op once it is stored.
    if (pending.keyed.key.empty()) pending.keyed.key = fmt::format("{}-{:016x}", key_prefix_, ++state.next_key);
    state.unwritten.push_back(std::move(pending.keyed));
    if (pending.ends_batch) state.callbacks.push_back(std::move(pending.on_durable));
    if (pending.journal) state.journal_marks.push_back(JournalMark{std::move(pending.journal), pending.journal_seq});
  }
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(count));
  taken_ += count;
  // The requests whose records this round has all taken (their tickets rise in order).
  std::size_t answered = 0;
  while (answered < fold_requests_.size() && fold_requests_[answered].ticket <= taken_) {
    state.fold_waiters.push_back(std::move(fold_requests_[answered].on_folded));
    ++answered;
  }
  fold_requests_.erase(fold_requests_.begin(), fold_requests_.begin() + static_cast<std::ptrdiff_t>(answered));
  return closing_ && queue_.empty();
}

void QueuedLedger::write_round(WriterState& state) {
  const auto try_database = [&] {
    const Result<void> written = backend_->write_batch(state.unwritten);
    if (written) {
      note_stored(state, state.unwritten.size());
      state.database_error.clear();
    } else {
      state.database_error = written.error().message;
    }
    return bool(written);
  };
  bool durable = false;
  bool database_tried = false;
  if (!state.spooling) {
    durable = try_database();
    database_tried = true;
  }
  if (!durable && spool_) {
    // fsync'd before the callers below hear "durable".
    if (const Result<void> stored = spool_->store(state.unwritten)) {
      durable = true;
      state.spool_error.clear();
      if (!state.spooling) {
        state.spooling = true;
        state.next_drain = SteadyClock::now() + options_.retry_interval;
      }
    } else {
      state.spool_error = stored.error().message;
    }
  }
  if (!durable && !database_tried) {
    durable = try_database();  // the spool failed: the database, in case it is back
  }

  Result<void> outcome;
  if (durable) {
    state.unwritten.clear();
    // In queue order, so each journal's last mark is its highest.
    for (const JournalMark& mark : state.journal_marks) mark.journal->publish_durable(mark.seq);
    state.journal_marks.clear();
  } else {
    std::string message = fmt::format("ledger write failed (record kept for retry): {}", state.database_error);
    if (spool_) {
      message += fmt::format("; the spool did not take it either: {}", state.spool_error);
    }
    outcome = make_error(std::move(message));
    if (state.unwritten.size() > options_.max_backlog) {
      const std::size_t excess = state.unwritten.size() - options_.max_backlog;
      state.unwritten.erase(state.unwritten.begin(), state.unwritten.begin() + static_cast<std::ptrdiff_t>(excess));
      state.dropped += excess;
      // A journaled record among them must stay in its journal for the next open: those
      // journals' space is never reused again (their loops go back to waiting).
      for (const JournalMark& mark : state.journal_marks) mark.journal->mark_stuck();
    }
  }
  update_health(state);
  for (const DurableCallback& on_durable : state.callbacks) {
    notify(on_durable, outcome);
  }
  state.callbacks.clear();
}

void QueuedLedger::drain_spool(WriterState& state) {
  const auto retry_later = [&] { state.next_drain = SteadyClock::now() + options_.retry_interval; };
  auto batch = spool_->oldest(std::max<std::size_t>(options_.max_batch, 1));
  if (!batch) {
    state.spool_error = batch.error().message;
    retry_later();
  } else if (batch->records.empty()) {
    state.spooling = false;  // drained: batches go to the database again
  } else if (const Result<void> written = backend_->write_batch(batch->records); !written) {
    state.database_error = written.error().message;
    retry_later();
  } else {
    note_stored(state, batch->records.size());
    state.database_error.clear();
    // Should the delete fail, the records are drained again later: their keys make that a no-op.
    if (const Result<void> removed = spool_->remove_through(batch->last_seq); !removed) {
      state.spool_error = removed.error().message;
      retry_later();
    } else {
      state.next_drain = SteadyClock::now();  // more may be waiting: go on at once
    }
  }
  update_health(state);
}

void QueuedLedger::retry_replay(WriterState& state) {
  // Only while the database takes writes: a try against one that does not would hold the
  // writer for its busy timeout and fail the same way.
  if (!state.replay_retry || SteadyClock::now() < state.next_replay || !state.unwritten.empty() ||
      !state.database_error.empty() || state.spooling) {
    return;
  }
  std::size_t stored = 0;
  // This process's own journals are held (flock) by their loops, so only orphans are read.
  const ReplayReport report = replay_orphaned_journals(journal_base_, [&](std::vector<KeyedRecord> records) {
    return store_replayed(*backend_, nullptr, options_, std::move(records), &stored);
  });
  note_stored(state, stored);
  state.replay_problem = report.problem;
  state.replay_retry = report.left > 0;
  state.replay_retry_delay = std::clamp<SteadyClock::duration>(
      state.replay_retry_delay * 2, options_.retry_interval,
      std::max<SteadyClock::duration>(options_.retry_interval, kMaxFoldRetryDelay));
  state.next_replay = SteadyClock::now() + state.replay_retry_delay;
  update_health(state);
}

void QueuedLedger::update_health(const WriterState& state) {
  LedgerHealth health;
  health.spooled = spool_ ? spool_->size() : 0;
  const std::string database = state.database_error.empty() ? std::string("it is not taking writes")
                                                            : state.database_error;
  if (!state.unwritten.empty()) {
    health.healthy = false;
    health.reason = fmt::format("ledger not writable: {} ({} records waiting for retry", database,
                                state.unwritten.size());
    if (state.dropped > 0) {
      health.reason += fmt::format(", {} dropped", state.dropped);
    }
    health.reason += ")";
    if (spool_ && !state.spool_error.empty()) {
      health.reason += fmt::format("; spool: {}", state.spool_error);
    }
  } else if (state.spooling && spool_->full()) {
    health.healthy = false;
    health.reason = fmt::format("ledger not writable: {}; the spool '{}' is full ({} records, ledger.spool_max_records)",
                                database, spool_->path(), health.spooled);
  } else if (state.spooling && !state.database_error.empty()) {
    health.degraded = fmt::format("ledger database not writable: {}; {} records spooled to '{}'",
                                  state.database_error, health.spooled, spool_->path());
  } else if (state.spooling) {
    health.degraded = fmt::format("{} records spooled to '{}', being drained into the ledger database",
                                  health.spooled, spool_->path());
  }
  if (!state.fold_error.empty()) {
    const auto lag = std::chrono::duration_cast<std::chrono::seconds>(SteadyClock::now() - state.folded_at);
    const std::string fold = fmt::format(
        "ledger roll-ups not folded for {} s ({} calls stored since, missing from /stats): {}", lag.count(),
        state.unfolded, state.fold_error);
    health.degraded = health.degraded.empty() ? fold : health.degraded + "; " + fold;
  }
  if (!state.replay_problem.empty()) {
    // Calls answered from a journal that are not in the ledger yet (or not readable).
    const std::string replay = "ledger journals not replayed: " + state.replay_problem;
    health.degraded = health.degraded.empty() ? replay : health.degraded + "; " + replay;
  }
  // Why a reader's fold would not come promptly; it is then answered at once with this.
  std::string fold_trouble;
  if (!state.unwritten.empty() || !state.database_error.empty()) {
    fold_trouble = fmt::format("the ledger database is not taking writes: {}",
                               state.database_error.empty() ? database : state.database_error);
  } else if (!state.fold_error.empty()) {
    fold_trouble = "the ledger roll-ups could not be folded: " + state.fold_error;
  }
  std::lock_guard lock(mutex_);
  health_ = std::move(health);
  fold_trouble_ = std::move(fold_trouble);
}

}  // namespace turnout::ledger
