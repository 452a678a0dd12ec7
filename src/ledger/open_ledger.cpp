#include "ledger/ledger.hpp"

#include "ledger/ledger_url.hpp"
#include "ledger/postgres/backend.hpp"
#include "ledger/queued_ledger.hpp"
#include "ledger/sqlite/backend.hpp"

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
  auto ledger = QueuedLedger::open(std::move(backend), options);
  if (!ledger) {
    return ledger.error();
  }
  return std::unique_ptr<Ledger>(std::move(*ledger));
}

}  // namespace turnout::ledger
