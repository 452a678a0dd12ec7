#pragma once
// Roll-ups as schema version 4 stored them (before "series roll-ups"): no six-hour width,
// and one latency_rollups row per histogram cell. The upgrade tests of both engines write
// these rows for a set of records into a version-4 database, with no raw record left (as
// after retention), so what the migration builds can only come from the stored roll-ups.
#include "ledger/rollup.hpp"

#include <fmt/format.h>

#include <string>
#include <vector>

namespace turnout::ledger::test {

// The INSERT statements (plain SQL literals, read alike by SQLite and PostgreSQL) of the
// version-4 roll-ups of `records`. Names must not contain a quote (random_records' do not).
inline std::string version4_rollups_sql(const std::vector<CallRecord>& records) {
  RollupBuilder rollups(unix_now() - kSecondRollupLifetime);
  for (const CallRecord& record : records) {
    if (!rollups.add(record)) return "SELECT 'roll-up sums overflowed' AS error_in_test_data FROM nowhere";
  }
  constexpr std::int64_t six_hours = 21'600;  // the width version 4 did not have
  std::string sql;
  for (const auto& [key, row] : rollups.totals()) {
    if (key.width == six_hours) continue;
    sql += fmt::format("INSERT INTO rollups VALUES ({}, {}, '{}', '{}', '{}', {}, {}, {}, {}, {}, {}, {}, {}, {});\n",
                       key.width, key.bucket, key.instance_id, key.model, key.route, row.calls, row.errors,
                       row.prompt_tokens, row.completion_tokens, row.priced_calls, row.priced_cost, row.latency_sum,
                       row.baseline_cost, row.savings);
  }
  for (const auto& [key, row] : rollups.key_totals()) {
    if (key.width == six_hours) continue;
    sql += fmt::format("INSERT INTO key_rollups VALUES ({}, {}, '{}', '{}', {}, {}, {}, {}, {});\n", key.width,
                       key.bucket, key.instance_id, key.client_key_id, row.calls, row.prompt_tokens,
                       row.completion_tokens, row.priced_calls, row.priced_cost);
  }
  for (const auto& [key, cells] : rollups.latencies()) {
    if (key.width == six_hours) continue;
    for (const auto& [cell, figures] : cells) {
      sql += fmt::format("INSERT INTO latency_rollups VALUES ({}, {}, '{}', '{}', {}, {}, {}, {});\n", key.width,
                         key.bucket, key.instance_id, key.model, cell, figures.count, figures.min_ms, figures.max_ms);
    }
  }
  return sql;
}

}  // namespace turnout::ledger::test
