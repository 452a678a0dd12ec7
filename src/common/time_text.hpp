#pragma once
// Times written by people and scripts: `?since=`/`?until=` on /stats and the ledger
// export's --since/--until. Wall-clock seconds as the ledger stores them: unix_now().
#include "common/clock.hpp"

#include <optional>
#include <string_view>

namespace turnout {

// "1732600000", "1732600000.5" or RFC 3339 ("2026-11-26T15:30:00Z", "...+01:00") as unix
// seconds; nullopt for anything else.
std::optional<double> parse_time_param(std::string_view text);

}  // namespace turnout
