#pragma once
// `turnout ledger export`: every ledger record, oldest first, as JSON Lines or CSV. The
// records are streamed (SQLite steps one statement row by row, PostgreSQL reads through a
// server-side cursor), so a ledger of any size exports in constant memory.
#include "common/result.hpp"

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

namespace turnout::ledger {

enum class ExportFormat {
  jsonl,  // one compact JSON object per line
  csv,    // RFC 4180 with a header line, "\n" line ends
};

// The same window as /stats: records with since <= timestamp < until (unix seconds).
struct ExportQuery {
  std::optional<double> since;
  std::optional<double> until;
};

// Writes the records of the ledger at `ledger_url` that fall in `query`'s window to `out`,
// in write order, and returns how many were written. Each record has the fields id,
// timestamp, instance_id, client_key_id, requested_model, model, route,
// counted_prompt_tokens, prompt_tokens, completion_tokens, cached_tokens, usage_reported,
// cost_usd, baseline_cost_usd, latency_ms, ttft_ms, status, error_type, attempts, stream,
// in that order in both formats. Money is the exact decimal of pricing::format_usd; an
// unknown price or an absent ttft_ms is null in JSON Lines and an empty field in CSV.
//
// The ledger is only read: a SQLite file must already exist (none is created), a
// PostgreSQL ledger is read in one read-only snapshot. Errors never contain the URL's
// credentials. On an error, the records written before it stay written.
Result<std::uint64_t> export_ledger(const std::string& ledger_url, const ExportQuery& query, ExportFormat format,
                                    std::ostream& out);

}  // namespace turnout::ledger
