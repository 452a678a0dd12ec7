#pragma once
// One call record as a row of SQLite columns: the ledger's `calls` table and the spool's
// `spooled` table store the same columns in the same order, so the list and the binding
// exist once (a column added to one and not the other would silently drop on the way
// from the spool to the ledger).
#include "ledger/backend.hpp"
#include "ledger/sqlite/db.hpp"

#include <string>
#include <string_view>

namespace turnout::ledger::sqlite {

// The record's columns, bound as ?1 .. ?kCallRowColumnCount in this order.
inline constexpr std::string_view kCallRowColumns =
    "record_key, id, timestamp, instance_id, client_key_id, requested_model, model, route, counted_prompt_tokens, "
    "prompt_tokens, completion_tokens, cached_tokens, usage_reported, cost_pico, baseline_cost_pico, latency_ms, "
    "ttft_ms, status, error_type, attempts, stream, endpoint, count_estimated, count_partial";
inline constexpr int kCallRowColumnCount = 24;

// "?1, ?2, ..., ?count": the VALUES list for `count` numbered parameters.
std::string numbered_parameters(int count);

// Binds `keyed` to parameters 1 .. kCallRowColumnCount of `insert`. Text is bound as views:
// `keyed` must outlive the statement's next step().
void bind_call_row(Statement& insert, const KeyedRecord& keyed);

}  // namespace turnout::ledger::sqlite
