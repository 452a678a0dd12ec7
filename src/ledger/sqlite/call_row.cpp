#include "ledger/sqlite/call_row.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace turnout::ledger::sqlite {
namespace {

// Tokens are stored as SQLite's signed 64-bit integers; counts beyond 2^63 do not occur.
std::int64_t as_integer(std::uint64_t count) { return static_cast<std::int64_t>(count); }
std::uint64_t as_count(std::int64_t stored) { return static_cast<std::uint64_t>(stored); }

std::optional<std::int64_t> pico_or_null(const std::optional<pricing::Money>& money) {
  if (!money) return std::nullopt;
  return money->pico;
}

std::optional<pricing::Money> money_or_none(std::optional<std::int64_t> pico) {
  if (!pico) return std::nullopt;
  return pricing::Money{*pico};
}

std::int64_t flag(bool set) { return set ? 1 : 0; }

struct CallRowColumn {
  std::string_view name;
  std::string_view declaration;  // as a STRICT table declares it, after the name
  void (*bind)(Statement& insert, int index, const KeyedRecord& keyed);
  void (*read)(const Statement& row, int column, KeyedRecord& keyed);
};

// The one list. A new column: one entry here (give a NOT NULL column a DEFAULT so an older
// spool's rows can move to the new shape), a `calls` migration in schema.cpp, the
// spool's format number (spool.cpp) raised by one, and the column in record_scan.cpp's
// list and reader (export, and the roll-up fold, read rows back through that list; a
// compile-time count and a unit test catch one missing there).
constexpr auto kColumns = std::to_array<CallRowColumn>({
    {"record_key", "TEXT NOT NULL UNIQUE",
     [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, std::string_view(k.key)); },
     [](const Statement& s, int c, KeyedRecord& k) { k.key = s.column_text(c); }},
    {"id", "TEXT NOT NULL",
     [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, std::string_view(k.record.id)); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.id = s.column_text(c); }},
    {"timestamp", "REAL NOT NULL", [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, k.record.timestamp); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.timestamp = s.column_double(c); }},
    {"instance_id", "TEXT NOT NULL",
     [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, std::string_view(k.record.instance_id)); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.instance_id = s.column_text(c); }},
    {"client_key_id", "TEXT NOT NULL",
     [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, std::string_view(k.record.client_key_id)); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.client_key_id = s.column_text(c); }},
    {"requested_model", "TEXT NOT NULL",
     [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, std::string_view(k.record.requested_model)); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.requested_model = s.column_text(c); }},
    {"model", "TEXT NOT NULL",
     [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, std::string_view(k.record.model)); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.model = s.column_text(c); }},
    {"route", "TEXT NOT NULL",
     [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, std::string_view(k.record.route)); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.route = s.column_text(c); }},
    {"counted_prompt_tokens", "INTEGER",
     [](Statement& s, int i, const KeyedRecord& k) {
       const auto& counted = k.record.counted_prompt_tokens;
       s.bind(i, counted ? std::optional<std::int64_t>(as_integer(*counted)) : std::nullopt);
     },
     [](const Statement& s, int c, KeyedRecord& k) {
       if (auto counted = s.column_optional_int(c)) k.record.counted_prompt_tokens = as_count(*counted);
     }},
    {"prompt_tokens", "INTEGER NOT NULL",
     [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, as_integer(k.record.usage.prompt_tokens)); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.usage.prompt_tokens = as_count(s.column_int(c)); }},
    {"completion_tokens", "INTEGER NOT NULL",
     [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, as_integer(k.record.usage.completion_tokens)); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.usage.completion_tokens = as_count(s.column_int(c)); }},
    {"cached_tokens", "INTEGER NOT NULL",
     [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, as_integer(k.record.usage.cached_tokens)); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.usage.cached_tokens = as_count(s.column_int(c)); }},
    {"usage_reported", "INTEGER NOT NULL",
     [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, flag(k.record.usage_reported)); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.usage_reported = s.column_int(c) != 0; }},
    {"cost_pico", "INTEGER", [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, pico_or_null(k.record.cost)); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.cost = money_or_none(s.column_optional_int(c)); }},
    {"baseline_cost_pico", "INTEGER",
     [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, pico_or_null(k.record.baseline_cost)); },
     [](const Statement& s, int c, KeyedRecord& k) {
       k.record.baseline_cost = money_or_none(s.column_optional_int(c));
     }},
    {"latency_ms", "REAL NOT NULL", [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, k.record.latency_ms); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.latency_ms = s.column_double(c); }},
    {"ttft_ms", "REAL", [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, k.record.ttft_ms); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.ttft_ms = s.column_optional_double(c); }},
    {"status", "INTEGER NOT NULL",
     [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, std::int64_t{k.record.status}); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.status = static_cast<int>(s.column_int(c)); }},
    {"error_type", "TEXT NOT NULL",
     [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, std::string_view(k.record.error_type)); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.error_type = s.column_text(c); }},
    {"attempts", "INTEGER NOT NULL",
     [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, std::int64_t{k.record.attempts}); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.attempts = static_cast<int>(s.column_int(c)); }},
    {"stream", "INTEGER NOT NULL", [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, flag(k.record.stream)); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.stream = s.column_int(c) != 0; }},
    {"endpoint", "TEXT NOT NULL",
     [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, std::string_view(k.record.endpoint)); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.endpoint = s.column_text(c); }},
    {"count_estimated", "INTEGER NOT NULL",
     [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, flag(k.record.count_estimated)); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.count_estimated = s.column_int(c) != 0; }},
    {"count_partial", "INTEGER NOT NULL",
     [](Statement& s, int i, const KeyedRecord& k) { s.bind(i, flag(k.record.count_partial)); },
     [](const Statement& s, int c, KeyedRecord& k) { k.record.count_partial = s.column_int(c) != 0; }},
});

// The count is sized from the list (std::to_array), so a list one entry short of the
// header's count fails here rather than leaving a null bind or read to crash at run time.
static_assert(kColumns.size() == kCallRowColumnCount, "kCallRowColumnCount must match the call-row list");
static_assert(std::ranges::all_of(kColumns, [](const CallRowColumn& column) {
                return !column.name.empty() && !column.declaration.empty() && column.bind != nullptr &&
                       column.read != nullptr;
              }),
              "every call-row column needs a name, a declaration, a bind and a read");

}  // namespace

std::string call_row_columns() {
  std::string list;
  for (const CallRowColumn& column : kColumns) {
    if (!list.empty()) list += ", ";
    list += column.name;
  }
  return list;
}

std::string call_row_declarations() {
  std::string list;
  for (const CallRowColumn& column : kColumns) {
    if (!list.empty()) list += ", ";
    list += column.name;
    list += ' ';
    list += column.declaration;
  }
  return list;
}

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
  int index = 1;
  for (const CallRowColumn& column : kColumns) column.bind(insert, index++, keyed);
}

KeyedRecord read_call_row(const Statement& row, int first_column) {
  KeyedRecord keyed;
  int column_index = first_column;
  for (const CallRowColumn& column : kColumns) column.read(row, column_index++, keyed);
  return keyed;
}

}  // namespace turnout::ledger::sqlite
