#pragma once
// JSON of teams, keys and usage, as the CLI prints them and the admin API answers
// (docs/REFERENCE.md "Governance"). Money as exact decimal numbers; never the secret or its hash.
#include "governance/records.hpp"

#include <string>

namespace turnout::governance {

std::string team_json(const TeamRecord& team, const ScopeUsage* usage = nullptr);
// `key`: the whole virtual key, only in the answer to create and rotate.
std::string key_json(const KeyRecord& key, const ScopeUsage* usage = nullptr, const std::string* whole_key = nullptr);
std::string usage_json(const ScopeUsage& usage);

// "2026-12-31T23:00:00Z" for unix ms (UTC, second precision when whole).
std::string rfc3339_ms(std::int64_t unix_ms);

// A USD amount ("0.01", "25") as pico-dollars; plain decimals with at most 12 places.
Result<std::int64_t> parse_usd(std::string_view text);

}  // namespace turnout::governance
