#pragma once
// Lease mode (governance.mode: lease; docs/ARCHITECTURE.md "Leases"). A replica reserves a
// slice of a hot key's budget (and its team's) in the database, durably, as a hold is
// taken, and then admits that key's calls against the slice in process, with no database
// round trip. Each call's record still settles its actual cost in the ledger writer's
// transaction, out of the lease's reservation. The unused part goes back when the lease is
// replaced, idle, dropped (revocation, a changed key) or at shutdown; a replica that dies
// leaves its lease to expire and be charged in full, so at most the slice is stranded.
#include "admit/admission.hpp"
#include "governance/store.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

namespace turnout::admit {

// One lease as this replica spends it. Exact integer pico-dollars; not locked (the pool is).
struct LeaseSlice {
  std::int64_t granted_pico = 0;    // reserved in the database when the lease was taken
  std::int64_t consumed_pico = 0;   // actual costs of the calls that finished
  std::int64_t in_flight_pico = 0;  // worst cases of the calls admitted and not finished
  std::int64_t returned_pico = 0;   // given back to the database
  std::uint64_t in_flight_calls = 0;

  // What may still be admitted: never below 0, even after a call cost more than its worst case.
  std::int64_t available() const;
  // Admits a call of worst case `amount_pico` when it fits.
  bool take(std::int64_t amount_pico);
  // A call admitted with `amount_pico` finished, costing `cost_pico`.
  void finish(std::int64_t amount_pico, std::int64_t cost_pico);
  // Everything available, now counted as returned: what to give back to the database.
  std::int64_t take_unused();
};

struct LeaseSettings {
  std::int64_t max_slice_pico = 1'000'000'000'000;
  std::chrono::milliseconds ttl{30'000};   // a lease admits calls this long (beyond a call's own duration)
  std::chrono::milliseconds idle{5'000};   // unused this long: its unused part goes back
  // Returns waiting for the database at most: past it a return is dropped and its part
  // stays reserved until the lease expires (then charged as expired), never overspent.
  // A return that finds no lease row waits too, until the lease's expiry (see return_unused).
  std::size_t max_pending_returns = 10'000;
};

// A call admitted against a lease: its hold id ("lease-<lease id>-<n>") goes into its record.
struct LeaseTicket {
  std::string hold_id;
  std::int64_t remaining_pico = 0;  // the budget left as this replica knows it (for the header)
};

// The key as the database holds it now cannot be used (revoked, expired...) though the
// caller's cached grant still could: `why` in invalid_key_refusal's words.
struct KeyUnusable {
  std::string why;
};

class LeasePool {
 public:
  LeasePool(governance::GovernanceStore& store, LeaseSettings settings);

  // Admits a call on the grant's key with worst case `amount_pico`, running until at most
  // `call_ends_ms`: in process when this replica's lease has room and time, else by taking
  // a new lease (giving back the old one's unused part in the same transaction). Blocks on
  // the database in that case only. A BudgetShortfall: even the call alone does not fit
  // (the key's limits as stored now). KeyUnusable: the key changed since the grant was read.
  using Outcome = std::variant<LeaseTicket, governance::BudgetShortfall, KeyUnusable, governance::StoreError>;
  Outcome admit(const KeyGrant& grant, std::int64_t amount_pico, std::int64_t now_ms, std::int64_t call_ends_ms);

  // A lease call's record was handed to the ledger with its actual cost.
  void finish(std::string_view hold_id, std::int64_t cost_pico);

  // No more admissions on the key's (or the team's keys') lease: revoked or changed.
  void drop_key(const std::string& key_id);
  void drop_team(const std::string& team_id);

  // Gives back the unused part of idle, expired and dropped leases (all of them when
  // `everything`, at shutdown). Blocks on the database; a failed return is retried later.
  // A return that finds no lease row is retried later too until the lease expires: its
  // take's COMMIT may still be finishing (an answer lost as the connection broke).
  void return_unused(std::int64_t now_ms, bool everything = false);

  // Leases held (open or still settling), for tests and /stats.
  std::size_t leases() const;
  // Returns waiting for the database (bounded by max_pending_returns).
  std::size_t pending_returns() const;

 private:
  struct Lease {
    std::string key_id;
    std::string team_id;        // the team the database counts it in: what drop_team matches
    std::string grant_team_id;  // the team of the grant it was taken on: a changed grant renews
    std::int64_t key_version = 0;   // the key's updated_at when taken: a changed key drops it
    std::int64_t team_version = 0;
    std::int64_t expires_at_ms = 0;
    std::optional<std::int64_t> period_end_ms;
    std::int64_t remaining_elsewhere_pico = 0;  // the budget's room beyond the slice, at the grant
    std::int64_t last_used_ms = 0;
    bool closed = false;
    LeaseSlice slice;
  };
  struct Ticket {
    std::string lease_id;
    std::int64_t amount_pico = 0;
  };
  // A part to give back, and when its lease expires: until then a return finding no lease
  // row may be early (the take's COMMIT not landed yet); from then the sweep charges it.
  struct PendingReturn {
    governance::LeaseReturn part;
    std::int64_t expires_at_ms = 0;
  };

  // Under mutex_: admits against the key's open lease when it has room, time and the
  // grant's version; nullopt otherwise.
  std::optional<LeaseTicket> admit_locally(const KeyGrant& grant, std::int64_t amount_pico, std::int64_t now_ms,
                                           std::int64_t call_ends_ms);
  LeaseTicket ticket(const std::string& lease_id, Lease& lease, std::int64_t amount_pico);
  // Under mutex_: no more admissions; its unused part, to give back. Forgotten once nothing
  // of it is in flight. By value: callers pass ids held by the maps it erases from.
  std::optional<PendingReturn> close(std::string lease_id);
  std::shared_ptr<std::mutex> renewal_lock(const std::string& key_id);
  // Under mutex_: queues a return for the keeper, unless max_pending_returns are waiting.
  void queue_return(PendingReturn unused);

  governance::GovernanceStore& store_;
  const LeaseSettings settings_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Lease> leases_;         // by lease id
  std::unordered_map<std::string, std::string> open_;     // key id -> its open lease's id
  std::unordered_map<std::string, Ticket> tickets_;       // calls in flight, by hold id
  std::unordered_map<std::string, std::shared_ptr<std::mutex>> renewing_;  // one renewal per key at a time
  std::vector<PendingReturn> pending_returns_;  // closed, not yet given back
  std::uint64_t next_call_ = 0;
};

}  // namespace turnout::admit
