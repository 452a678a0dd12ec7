#pragma once
// A ledger spool file as an older turnout left it behind, for the upgrade tests: its table
// in that format's shape (spelled out here, frozen, not taken from the current code) with
// the given rows, and its format number.
//   format 1: chat calls only, before the endpoint, the count flags and the hold id;
//   format 2: those columns added, counted_prompt_tokens still NOT NULL.
#include "ledger/sqlite/db.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace turnout::test {

inline constexpr std::string_view kSpoolFormat1Columns =
    "seq INTEGER PRIMARY KEY, record_key TEXT NOT NULL UNIQUE, id TEXT NOT NULL, timestamp REAL NOT NULL, "
    "instance_id TEXT NOT NULL, client_key_id TEXT NOT NULL, requested_model TEXT NOT NULL, model TEXT NOT NULL, "
    "route TEXT NOT NULL, counted_prompt_tokens INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL, "
    "completion_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, usage_reported INTEGER NOT NULL, "
    "cost_pico INTEGER, baseline_cost_pico INTEGER, latency_ms REAL NOT NULL, ttft_ms REAL, "
    "status INTEGER NOT NULL, error_type TEXT NOT NULL, attempts INTEGER NOT NULL, stream INTEGER NOT NULL";
inline constexpr std::string_view kSpoolFormat2Additions =
    "endpoint TEXT NOT NULL, count_estimated INTEGER NOT NULL, count_partial INTEGER NOT NULL, "
    "hold_id TEXT NOT NULL DEFAULT ''";

// Creates `file` as a spool of `format` (1 or 2) holding `values` ("(1, 'k1', ...), ...",
// in that format's column order, then `extra_columns`' values): `extra_columns` (declared
// as in CREATE TABLE) stands for a column the current format no longer has.
inline ::testing::AssertionResult write_legacy_spool(const std::string& file, int format, std::string_view values,
                                                     std::string_view extra_columns = {}) {
  if (format != 1 && format != 2) return ::testing::AssertionFailure() << "no spool format " << format;
  auto db = ledger::sqlite::Database::open(file, ledger::sqlite::Database::OpenMode::create_if_missing);
  if (!db) return ::testing::AssertionFailure() << db.error().message;
  std::string columns(kSpoolFormat1Columns);
  if (format == 2) columns += ", " + std::string(kSpoolFormat2Additions);
  if (!extra_columns.empty()) columns += ", " + std::string(extra_columns);
  const std::string sql = "CREATE TABLE spooled (" + columns + ") STRICT; INSERT INTO spooled VALUES " +
                          std::string(values) + "; PRAGMA user_version = " + std::to_string(format) + ";";
  if (auto written = db->exec(sql); !written) return ::testing::AssertionFailure() << written.error().message;
  return ::testing::AssertionSuccess();
}

}  // namespace turnout::test
