#include "admit/lease_pool.hpp"

#include "governance/virtual_key.hpp"
#include "ledger/hold_settlement.hpp"

#include <algorithm>
#include <limits>

namespace turnout::admit {
namespace {

constexpr std::int64_t kEverything = std::numeric_limits<std::int64_t>::max();

// A return of everything a lease reserves, for a lease whose take this replica cannot know
// the outcome of: return_lease gives back at most what the row still reserves.
governance::LeaseReturn whole_lease_return(std::string lease_id) {
  return governance::LeaseReturn{std::move(lease_id), kEverything, kEverything};
}

bool is_whole_lease_return(const governance::LeaseReturn& part) { return part.returned_total_pico == kEverything; }

}  // namespace

std::int64_t LeaseSlice::available() const {
  return std::max<std::int64_t>(granted_pico - consumed_pico - in_flight_pico - returned_pico, 0);
}

bool LeaseSlice::take(std::int64_t amount_pico) {
  if (amount_pico < 0 || amount_pico > available()) return false;
  in_flight_pico += amount_pico;
  ++in_flight_calls;
  return true;
}

void LeaseSlice::finish(std::int64_t amount_pico, std::int64_t cost_pico) {
  in_flight_pico -= amount_pico;
  if (in_flight_calls > 0) --in_flight_calls;
  consumed_pico += std::max<std::int64_t>(cost_pico, 0);
}

std::int64_t LeaseSlice::take_unused() {
  const std::int64_t unused = available();
  returned_pico += unused;
  return unused;
}

LeasePool::LeasePool(governance::GovernanceStore& store, LeaseSettings settings)
    : store_(store), settings_(settings) {}

LeaseTicket LeasePool::ticket(const std::string& lease_id, Lease& lease, std::int64_t amount_pico) {
  std::string hold_id(ledger::kLeaseHoldPrefix);
  hold_id += lease_id;
  hold_id += '-';
  hold_id += std::to_string(++next_call_);
  tickets_[hold_id] = Ticket{lease_id, amount_pico};
  return LeaseTicket{std::move(hold_id), lease.remaining_elsewhere_pico + lease.slice.available()};
}

std::optional<LeaseTicket> LeasePool::admit_locally(const KeyGrant& grant, std::int64_t amount_pico,
                                                    std::int64_t now_ms, std::int64_t call_ends_ms) {
  const auto open = open_.find(grant.key.id);
  if (open == open_.end()) return std::nullopt;
  Lease& lease = leases_.at(open->second);
  const bool current = lease.key_version == grant.key.updated_at_ms &&
                       lease.team_version == (grant.team ? grant.team->updated_at_ms : 0) &&
                       lease.grant_team_id == (grant.team ? grant.team->id : "");
  // A call must settle before the lease can expire, and start in the lease's periods.
  const bool in_time = call_ends_ms <= lease.expires_at_ms && (!lease.period_end_ms || now_ms < *lease.period_end_ms);
  if (!current || !in_time || !lease.slice.take(amount_pico)) return std::nullopt;
  lease.last_used_ms = now_ms;
  return ticket(open->second, lease, amount_pico);
}

std::optional<LeasePool::PendingReturn> LeasePool::close(std::string lease_id) {
  const auto found = leases_.find(lease_id);
  if (found == leases_.end()) return std::nullopt;
  Lease& lease = found->second;
  if (!lease.closed) {
    lease.closed = true;
    if (const auto open = open_.find(lease.key_id); open != open_.end() && open->second == lease_id) open_.erase(open);
  }
  const std::int64_t unused = lease.slice.take_unused();
  const std::int64_t returned_total = lease.slice.returned_pico;
  const std::int64_t expires_at_ms = lease.expires_at_ms;
  if (lease.slice.in_flight_calls == 0) leases_.erase(found);
  if (unused == 0) return std::nullopt;
  return PendingReturn{governance::LeaseReturn{std::move(lease_id), unused, returned_total}, expires_at_ms};
}

std::shared_ptr<std::mutex> LeasePool::renewal_lock(const std::string& key_id) {
  std::lock_guard lock(mutex_);
  auto& renewal = renewing_[key_id];
  if (!renewal) renewal = std::make_shared<std::mutex>();
  return renewal;
}

LeasePool::Outcome LeasePool::admit(const KeyGrant& grant, std::int64_t amount_pico, std::int64_t now_ms,
                                    std::int64_t call_ends_ms) {
  {
    std::lock_guard lock(mutex_);
    if (auto admitted = admit_locally(grant, amount_pico, now_ms, call_ends_ms)) return std::move(*admitted);
  }
  // One renewal per key at a time: the others wait, then spend the new lease.
  const auto renewal = renewal_lock(grant.key.id);
  std::lock_guard renewing(*renewal);
  governance::LeaseRequest request;
  std::optional<PendingReturn> previous;
  {
    std::lock_guard lock(mutex_);
    if (auto admitted = admit_locally(grant, amount_pico, now_ms, call_ends_ms)) return std::move(*admitted);
    if (const auto open = open_.find(grant.key.id); open != open_.end()) previous = close(open->second);
  }
  if (previous) request.previous = previous->part;
  auto lease_id = governance::random_hex(16);
  if (!lease_id) return governance::StoreError{governance::FailureKind::database, lease_id.error().message};
  request.lease_id = std::move(*lease_id);
  request.key = &grant.key;
  request.team = grant.team ? &*grant.team : nullptr;
  request.needed_pico = amount_pico;
  request.max_slice_pico = settings_.max_slice_pico;
  request.now_ms = now_ms;
  request.expires_at_ms = call_ends_ms + settings_.ttl.count();
  auto granted = store_.take_lease(request);
  std::lock_guard lock(mutex_);
  if (!granted) {
    // The previous lease's unused part is still reserved in the database: give it back later
    // (re-sent after a lost COMMIT answer it frees nothing twice: returns carry their total).
    if (previous) queue_return(std::move(*previous));
    // Only a lost COMMIT answer can leave a lease stored that this replica never spends:
    // give it all back (a return of a lease the database never stored frees nothing).
    // Any other failure wrote nothing, so there is nothing to give back.
    if (granted.error().kind == governance::FailureKind::commit_unknown)
      queue_return(PendingReturn{whole_lease_return(request.lease_id), request.expires_at_ms});
    return granted.error();
  }
  if (granted->unusable) {
    if (previous) queue_return(std::move(*previous));  // rolled back with the rest
    return KeyUnusable{*granted->unusable};
  }
  if (granted->refused) return *granted->refused;
  Lease& lease = leases_[request.lease_id];
  lease.key_id = grant.key.id;
  lease.team_id = granted->team_id;
  lease.grant_team_id = grant.team ? grant.team->id : "";
  lease.key_version = grant.key.updated_at_ms;
  lease.team_version = grant.team ? grant.team->updated_at_ms : 0;
  lease.expires_at_ms = request.expires_at_ms;
  lease.period_end_ms = granted->period_end_ms;
  lease.remaining_elsewhere_pico = granted->remaining_pico;
  lease.last_used_ms = now_ms;
  lease.slice.granted_pico = granted->reserved_pico;
  open_[grant.key.id] = request.lease_id;
  lease.slice.take(amount_pico);  // fits: the slice is at least the call's worst case
  return ticket(request.lease_id, lease, amount_pico);
}

void LeasePool::finish(std::string_view hold_id, std::int64_t cost_pico) {
  if (!ledger::lease_of_hold(hold_id)) return;
  std::lock_guard lock(mutex_);
  const auto found = tickets_.find(std::string(hold_id));
  if (found == tickets_.end()) return;
  const Ticket ticket = std::move(found->second);
  tickets_.erase(found);
  const auto lease = leases_.find(ticket.lease_id);
  if (lease == leases_.end()) return;
  lease->second.slice.finish(ticket.amount_pico, cost_pico);
  // A closed lease's last call: what it did not cost goes back too.
  if (lease->second.closed) {
    if (auto unused = close(ticket.lease_id)) queue_return(std::move(*unused));
  }
}

void LeasePool::drop_key(const std::string& key_id) {
  std::lock_guard lock(mutex_);
  if (const auto open = open_.find(key_id); open != open_.end()) {
    if (auto unused = close(open->second)) queue_return(std::move(*unused));
  }
}

void LeasePool::drop_team(const std::string& team_id) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> dropped;
  for (const auto& [lease_id, lease] : leases_)
    if (!lease.closed && lease.team_id == team_id) dropped.push_back(lease_id);
  for (const std::string& lease_id : dropped)
    if (auto unused = close(lease_id)) queue_return(std::move(*unused));
}

void LeasePool::return_unused(std::int64_t now_ms, bool everything) {
  std::vector<PendingReturn> returns;
  {
    std::lock_guard lock(mutex_);
    std::vector<std::string> due;
    for (const auto& [lease_id, lease] : leases_) {
      const bool idle = now_ms - lease.last_used_ms >= settings_.idle.count();
      if (!lease.closed && (everything || idle || now_ms >= lease.expires_at_ms)) due.push_back(lease_id);
    }
    for (const std::string& lease_id : due)
      if (auto unused = close(lease_id)) queue_return(std::move(*unused));
    returns.swap(pending_returns_);
  }
  // One at a time, so a failure re-queues only what was not given back (never twice). A
  // return that finds no lease row frees nothing. A whole-lease return (its take's COMMIT
  // answer was lost) is kept for a later round until the lease's expiry, as that COMMIT
  // may still be landing; from the expiry on the row is gone for good (swept, charged) or
  // never was. Any other return finds no row only once a sweep charged the lease, and is
  // dropped at once. The first failure ends the round: with the database away, every return would
  // wait out its own timeout. The failed one goes behind the untried rest, so a return
  // that keeps failing holds up no other.
  std::vector<PendingReturn> early;
  std::size_t done = 0;
  for (; done < returns.size(); ++done) {
    auto without_lease = store_.return_leases({returns[done].part});
    if (!without_lease) break;
    const bool may_still_land = is_whole_lease_return(returns[done].part) && now_ms < returns[done].expires_at_ms;
    if (*without_lease > 0 && may_still_land) early.push_back(std::move(returns[done]));
  }
  if (early.empty() && done == returns.size()) return;
  std::lock_guard lock(mutex_);
  for (PendingReturn& kept : early) queue_return(std::move(kept));
  if (done == returns.size()) return;
  for (std::size_t i = done + 1; i < returns.size(); ++i) queue_return(std::move(returns[i]));
  queue_return(std::move(returns[done]));
}

void LeasePool::queue_return(PendingReturn unused) {
  // At the bound the part stays reserved until the lease expires: unspendable, not lost.
  if (pending_returns_.size() >= settings_.max_pending_returns) return;
  pending_returns_.push_back(std::move(unused));
}

std::size_t LeasePool::pending_returns() const {
  std::lock_guard lock(mutex_);
  return pending_returns_.size();
}

std::size_t LeasePool::leases() const {
  std::lock_guard lock(mutex_);
  return leases_.size();
}

}  // namespace turnout::admit
