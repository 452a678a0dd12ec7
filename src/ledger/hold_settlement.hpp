#pragma once
// Settling governance holds (docs/ARCHITECTURE.md "Governance"). A hold is a durable row
// (gov_holds) that reserves an amount against a key's budget row and, for a key in a team,
// the team's, each in the period the hold was taken in. Settling deletes the hold and, per
// budget row, moves the hold's amount out of held_pico and the call's actual cost into
// spent_pico. The ledger writer settles in the same transaction that stores the call's
// record; an expired hold (a replica that died mid-call) is settled at its full amount.
// Deletion is what makes settlement happen exactly once: a hold already gone (swept, or
// a record written twice) changes nothing.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace turnout::ledger {

// A deleted hold, as RETURNING gives it back.
struct SettledHold {
  std::string key_scope;
  std::int64_t key_period_ms = 0;
  std::optional<std::string> team_scope;
  std::optional<std::int64_t> team_period_ms;
  std::int64_t amount_pico = 0;
  std::int64_t tokens = 0;                     // reserved against tpm in rate_window_ms
  std::optional<std::int64_t> rate_window_ms;  // none: no tokens reserved
};

struct BudgetDelta {
  std::int64_t spent_pico = 0;    // added to spent_pico
  std::int64_t held_pico = 0;     // added to held_pico (negative: released)
  std::int64_t expired_pico = 0;  // added to expired_pico (charged by expiry)
  std::int64_t expired_holds = 0;  // holds charged by expiry
  std::int64_t overruns = 0;       // calls whose actual cost exceeded their hold
  std::int64_t overrun_pico = 0;   // by how much, summed
};

// Changes per budget row, keyed (scope, period start) and so applied in one fixed order
// by every writer: two transactions that lock the same rows lock them in the same order.
using BudgetDeltas = std::map<std::pair<std::string, std::int64_t>, BudgetDelta>;

// `charged_pico`: the call's actual cost (0 when it has none), or for an expired hold
// its whole amount (`expired` true).
void add_settlement(BudgetDeltas& deltas, const SettledHold& hold, std::int64_t charged_pico, bool expired);

// Token changes per rate window row (gov_rates), keyed (scope, window start): settling
// gives back what the hold reserved beyond the call's actual tokens (or adds an overrun).
// An expired hold keeps its whole reservation, like its whole amount. A window already
// pruned (a later minute began) matches no row, which is right: it no longer limits.
using TokenDeltas = std::map<std::pair<std::string, std::int64_t>, std::int64_t>;

void add_token_settlement(TokenDeltas& deltas, const SettledHold& hold, std::int64_t actual_tokens);

// Lease mode (docs/ARCHITECTURE.md "Leases"): a call admitted against a replica's lease
// carries the hold id "lease-<lease id>-<n>", and its record settles against the lease
// row (gov_leases) instead of a hold: the call's actual cost moves into spent_pico and out
// of what the lease reserves (held_pico), so spent is still the sum of the ledger's costs.
inline constexpr std::string_view kLeaseHoldPrefix = "lease-";
// The lease id of such a hold id; none for an ordinary hold.
std::optional<std::string_view> lease_of_hold(std::string_view hold_id);

// The calls settled against one lease in one batch: `lease` as its row stands (amount_pico:
// what it still reserves), `charged_pico` their actual costs summed. Returns what the lease
// gives up: the charge, but never more than it reserves (beyond that: an overrun).
std::int64_t add_lease_settlement(BudgetDeltas& deltas, const SettledHold& lease, std::int64_t charged_pico);

struct CallRecord;
// What a call's record settles its reserved tokens to: prompt + completion tokens.
std::int64_t call_tokens(const CallRecord& record);

// The statement that applies one TokenDeltas entry: $1 delta, $2 scope, $3 window start.
// Never below 0, whatever a clock-skewed replica reserved.
inline constexpr const char* kApplyTokenDeltaSql =
    "UPDATE gov_rates SET tokens = CASE WHEN tokens + $1 < 0 THEN 0 ELSE tokens + $1 END "
    "WHERE scope = $2 AND window_start_ms = $3";

}  // namespace turnout::ledger
