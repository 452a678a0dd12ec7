#include "ledger/ledger.hpp"

#include "ledger/ledger_url.hpp"
#include "ledger/queued_ledger.hpp"
#include "ledger/sqlite_backend.hpp"

#include <fmt/format.h>

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
    case LedgerKind::postgresql:
      return make_error(fmt::format("PostgreSQL ledger not available yet ({})", redact_url(url)));
  }
  return std::unique_ptr<Ledger>(std::make_unique<QueuedLedger>(std::move(backend), options));
}

}  // namespace turnout::ledger
