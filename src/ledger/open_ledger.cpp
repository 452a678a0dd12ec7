#include "ledger/ledger.hpp"

#include "ledger/ledger_url.hpp"
#include "ledger/postgres/backend.hpp"
#include "ledger/queued_ledger.hpp"
#include "ledger/sqlite/backend.hpp"

#include <fmt/format.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>

namespace turnout::ledger {

Result<std::unique_ptr<Ledger>> open_ledger(const std::string& url, const LedgerOptions& options) {
  auto parsed = parse_ledger_url(url);
  if (!parsed) {
    return parsed.error();
  }
  std::unique_ptr<Backend> backend;
  switch (parsed->kind) {
    case LedgerKind::sqlite_file:
    case LedgerKind::sqlite_memory: {
      auto sqlite = SqliteBackend::open(parsed->kind == LedgerKind::sqlite_memory ? ":memory:" : parsed->location);
      if (!sqlite) {
        return sqlite.error();
      }
      backend = std::move(*sqlite);
      break;
    }
    case LedgerKind::postgresql: {
      auto postgres = PostgresBackend::open(parsed->location);
      if (!postgres) {
        return postgres.error();
      }
      backend = std::move(*postgres);
      break;
    }
  }
  // Journals only beside a file this machine keeps: a private in-memory ledger has no
  // next open, and a PostgreSQL instance may never start again on this disk, so a journal
  // it left could be orphaned for good. Kept even with options.journal off: the journals a
  // killed process left while it was on are still replayed.
  const std::string journal_base = parsed->kind == LedgerKind::sqlite_file ? parsed->location : std::string();
  auto ledger = QueuedLedger::open(std::move(backend), options, journal_base);
  if (!ledger) {
    return ledger.error();
  }
  return std::unique_ptr<Ledger>(std::move(*ledger));
}

}  // namespace turnout::ledger

namespace turnout::ledger {

FoldOutcome wait_for_fold(Ledger& ledger, std::chrono::milliseconds limit) {
  // Shared with the callback: it may run after a timed-out wait has returned.
  struct Answer {
    std::mutex mutex;
    std::condition_variable answered;
    std::optional<FoldOutcome> outcome;
  };
  auto answer = std::make_shared<Answer>();
  ledger.request_fold([answer](FoldOutcome outcome) {
    std::lock_guard lock(answer->mutex);
    answer->outcome = std::move(outcome);
    answer->answered.notify_all();
  });
  std::unique_lock lock(answer->mutex);
  if (!answer->answered.wait_for(lock, limit, [&] { return answer->outcome.has_value(); })) {
    return FoldOutcome{false, fmt::format("the ledger writer did not fold the roll-ups within {} ms", limit.count())};
  }
  return *answer->outcome;
}

}  // namespace turnout::ledger
