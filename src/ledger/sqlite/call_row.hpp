#pragma once
// One call record as a row of SQLite columns: the ledger's `calls` table and the spool's
// `spooled` table store the same columns in the same order. Each column (its name, its
// declaration, how a record binds to it and is read back from it) is one entry of one
// list in call_row.cpp, so a column added there reaches the calls insert, the spool's
// table and the spool's replay together (a column added to one and not the others would
// silently drop on the way from the spool to the ledger).
#include "ledger/backend.hpp"
#include "ledger/sqlite/db.hpp"

#include <string>

namespace turnout::ledger::sqlite {

// How many columns the list has; call_row.cpp sizes the list by its entries and checks
// this count (and that no entry is left empty) at compile time.
inline constexpr int kCallRowColumnCount = 24;

// "record_key, id, ...": the columns in list order, bound as ?1 .. ?kCallRowColumnCount.
std::string call_row_columns();

// "record_key TEXT NOT NULL UNIQUE, id TEXT NOT NULL, ...": the columns as a STRICT
// table declares them (the calls table's current types).
std::string call_row_declarations();

// "?1, ?2, ..., ?count": the VALUES list for `count` numbered parameters.
std::string numbered_parameters(int count);

// Binds `keyed` to parameters 1 .. kCallRowColumnCount of `insert`. Text is bound as views:
// `keyed` must outlive the statement's next step().
void bind_call_row(Statement& insert, const KeyedRecord& keyed);

// Reads the columns call_row_columns() selected, starting at result column `first_column`.
KeyedRecord read_call_row(const Statement& row, int first_column);

}  // namespace turnout::ledger::sqlite
