#include "ledger/hold_settlement.hpp"

#include "ledger/ledger.hpp"

#include <algorithm>

namespace turnout::ledger {
namespace {

void add_to(BudgetDeltas& deltas, const std::string& scope, std::int64_t period_ms, std::int64_t amount_pico,
            std::int64_t charged_pico, bool expired) {
  BudgetDelta& delta = deltas[{scope, period_ms}];
  delta.held_pico -= amount_pico;
  delta.spent_pico += charged_pico;
  if (expired) {
    delta.expired_pico += charged_pico;
    delta.expired_holds += 1;
  } else if (amount_pico > 0 && charged_pico > amount_pico) {  // 0: no budget was held
    delta.overruns += 1;
    delta.overrun_pico += charged_pico - amount_pico;
  }
}

}  // namespace

void add_settlement(BudgetDeltas& deltas, const SettledHold& hold, std::int64_t charged_pico, bool expired) {
  add_to(deltas, hold.key_scope, hold.key_period_ms, hold.amount_pico, charged_pico, expired);
  if (hold.team_scope && hold.team_period_ms) {
    add_to(deltas, *hold.team_scope, *hold.team_period_ms, hold.amount_pico, charged_pico, expired);
  }
}

std::optional<std::string_view> lease_of_hold(std::string_view hold_id) {
  if (!hold_id.starts_with(kLeaseHoldPrefix)) return std::nullopt;
  hold_id.remove_prefix(kLeaseHoldPrefix.size());
  return hold_id.substr(0, hold_id.find('-'));
}

std::int64_t add_lease_settlement(BudgetDeltas& deltas, const SettledHold& lease, std::int64_t charged_pico) {
  const std::int64_t released = std::clamp<std::int64_t>(charged_pico, 0, std::max<std::int64_t>(lease.amount_pico, 0));
  const auto add_to = [&](const std::string& scope, std::int64_t period_ms) {
    BudgetDelta& delta = deltas[{scope, period_ms}];
    delta.held_pico -= released;
    delta.spent_pico += charged_pico;
    if (charged_pico > released) {
      delta.overruns += 1;
      delta.overrun_pico += charged_pico - released;
    }
  };
  add_to(lease.key_scope, lease.key_period_ms);
  if (lease.team_scope && lease.team_period_ms) add_to(*lease.team_scope, *lease.team_period_ms);
  return released;
}

std::int64_t call_tokens(const CallRecord& record) {
  const std::uint64_t total = record.usage.prompt_tokens + record.usage.completion_tokens;
  return static_cast<std::int64_t>(std::min<std::uint64_t>(total, INT64_MAX));
}

void add_token_settlement(TokenDeltas& deltas, const SettledHold& hold, std::int64_t actual_tokens) {
  if (!hold.rate_window_ms) return;
  const std::int64_t delta = actual_tokens - hold.tokens;
  if (delta == 0) return;
  deltas[{hold.key_scope, *hold.rate_window_ms}] += delta;
  if (hold.team_scope) deltas[{*hold.team_scope, *hold.rate_window_ms}] += delta;
}

}  // namespace turnout::ledger
