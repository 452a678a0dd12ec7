#pragma once
// Reading stored call records back, oldest first (write order), one at a time and in
// bounded memory: what `turnout ledger export` and the roll-up backfill of a migration
// share. The caller owns the connection and, for PostgreSQL, the transaction the cursor
// lives in.
#include "common/result.hpp"
#include "ledger/ledger.hpp"
#include "ledger/postgres/connection.hpp"
#include "ledger/sqlite/db.hpp"

#include <functional>
#include <optional>
#include <string_view>

namespace turnout::ledger {

// Called for each record; an error stops the scan and is returned. The record is reused
// from one call to the next.
using RecordVisitor = std::function<Result<void>(const CallRecord&)>;

// The `calls` columns every scan reads, in CallRecord's order: the call-row list
// (sqlite/call_row.hpp) without record_key.
std::string_view record_scan_columns();

// Records with since <= timestamp < until (an absent bound is open).
struct RecordWindow {
  std::optional<double> since;
  std::optional<double> until;
};

// One statement, stepped row by row (in WAL mode, one consistent snapshot).
Result<void> scan_records(sqlite::Database& db, const RecordWindow& window, const RecordVisitor& visit);

// Records with after_seq < seq <= through_seq that the fold counts (counted_by_fold = 1;
// an older writer's rows are already in the roll-ups), in seq order (the roll-up fold). Its
// statement is cached on `db`: the writer runs this every fold.
Result<void> scan_records_by_seq(sqlite::Database& db, std::int64_t after_seq, std::int64_t through_seq,
                                 const RecordVisitor& visit);

// A NO SCROLL cursor read FETCH by FETCH, inside the caller's transaction. The session must
// send float8 values exactly (extra_float_digits = 3), as the ledger's sessions do.
Result<void> scan_records(pg::Connection& connection, const RecordWindow& window, const RecordVisitor& visit);

}  // namespace turnout::ledger
