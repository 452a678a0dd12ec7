#include "ledger/sqlite/call_row.hpp"

#include <cstdint>
#include <optional>

namespace turnout::ledger::sqlite {
namespace {

// Tokens are stored as SQLite's signed 64-bit integers; counts beyond 2^63 do not occur.
std::int64_t as_integer(std::uint64_t count) { return static_cast<std::int64_t>(count); }

std::optional<std::int64_t> pico_or_null(const std::optional<pricing::Money>& money) {
  if (!money) return std::nullopt;
  return money->pico;
}

}  // namespace

std::string numbered_parameters(int count) {
  std::string list;
  for (int i = 1; i <= count; ++i) {
    if (i > 1) list += ", ";
    list += '?';
    list += std::to_string(i);
  }
  return list;
}

void bind_call_row(Statement& insert, const KeyedRecord& keyed) {
  const CallRecord& r = keyed.record;
  insert.bind(1, std::string_view(keyed.key));
  insert.bind(2, std::string_view(r.id));
  insert.bind(3, r.timestamp);
  insert.bind(4, std::string_view(r.instance_id));
  insert.bind(5, std::string_view(r.client_key_id));
  insert.bind(6, std::string_view(r.requested_model));
  insert.bind(7, std::string_view(r.model));
  insert.bind(8, std::string_view(r.route));
  insert.bind(9, r.counted_prompt_tokens ? std::optional<std::int64_t>(as_integer(*r.counted_prompt_tokens))
                                         : std::nullopt);
  insert.bind(10, as_integer(r.usage.prompt_tokens));
  insert.bind(11, as_integer(r.usage.completion_tokens));
  insert.bind(12, as_integer(r.usage.cached_tokens));
  insert.bind(13, std::int64_t{r.usage_reported ? 1 : 0});
  insert.bind(14, pico_or_null(r.cost));
  insert.bind(15, pico_or_null(r.baseline_cost));
  insert.bind(16, r.latency_ms);
  insert.bind(17, r.ttft_ms);
  insert.bind(18, std::int64_t{r.status});
  insert.bind(19, std::string_view(r.error_type));
  insert.bind(20, std::int64_t{r.attempts});
  insert.bind(21, std::int64_t{r.stream ? 1 : 0});
  insert.bind(22, std::string_view(r.endpoint));
  insert.bind(23, std::int64_t{r.count_estimated ? 1 : 0});
  insert.bind(24, std::int64_t{r.count_partial ? 1 : 0});
}

}  // namespace turnout::ledger::sqlite
