#pragma once
// Ledger URLs: sqlite:PATH, sqlite::memory:, postgresql://user:pass@host:port/db.
#include "common/result.hpp"

#include <string>
#include <string_view>

namespace turnout::ledger {

enum class LedgerKind { sqlite_file, sqlite_memory, postgresql };

struct LedgerUrl {
  LedgerKind kind = LedgerKind::sqlite_file;
  std::string location;  // sqlite_file: the path as given; postgresql: the whole URL
};

// Errors name the scheme and never contain the URL's credentials.
Result<LedgerUrl> parse_ledger_url(std::string_view url);

// The URL without user, password and query (where libpq also accepts a password), for
// messages and logs: "postgresql://bob:secret@db:5432/x?sslmode=require" gives
// "postgresql://db:5432/x".
std::string redact_url(std::string_view url);

}  // namespace turnout::ledger
