// Lease mode in the admit stage (admission.hpp, lease_pool.hpp).
#include "admit/admission.hpp"
#include "admit/lease_pool.hpp"

#include "pricing/pricing.hpp"

#include <algorithm>

namespace turnout::admit {

std::variant<Admitted, Refusal> Admission::admit_on_lease(const KeyGrant& grant,
                                                          const governance::HoldRequest& request) {
  auto outcome = leases_->admit(grant, request.amount_pico, request.now_ms, request.expires_at_ms);
  if (const auto* shortfall = std::get_if<governance::BudgetShortfall>(&outcome)) {
    Refusal refusal = budget_refusal(grant, *shortfall, request.now_ms);
    const std::int64_t remaining = std::max<std::int64_t>(shortfall->budget_pico - shortfall->used_pico, 0);
    refusal.headers.emplace_back("x-turnout-budget-remaining-usd", pricing::format_usd_pico(remaining));
    return refusal;
  }
  if (const auto* unusable = std::get_if<KeyUnusable>(&outcome)) {
    forget(grant.key.id);  // the next call reads the key as it is now
    return invalid_key_refusal(grant.key.id, unusable->why);
  }
  if (std::holds_alternative<governance::StoreError>(outcome)) return governance_unavailable(grant.key.id);
  auto& ticket = std::get<LeaseTicket>(outcome);
  Admitted admitted;
  admitted.hold_id = std::move(ticket.hold_id);
  // As this replica knows it: the database's room at its last lease, plus its slice's.
  admitted.headers.emplace_back("x-turnout-budget-remaining-usd", pricing::format_usd_pico(ticket.remaining_pico));
  return admitted;
}

void Admission::call_recorded(std::string_view hold_id, std::int64_t cost_pico) {
  if (leases_ != nullptr) leases_->finish(hold_id, cost_pico);
}

}  // namespace turnout::admit
