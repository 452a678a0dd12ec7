#pragma once
// The admit stage: what the gateway asks before a call on a virtual key goes upstream.
//   authenticate(token)  the key, from an in-process cache (short TTL, negative entries
//                        too: no database round trip on a hit); unknown, revoked or
//                        expired: 401 invalid_api_key
//   admit(grant, cost)   model allow-lists (403 model_not_allowed), then one transaction
//                        that counts the call against rpm, reserves its most tokens
//                        against tpm, takes a slot under max_parallel (429
//                        rate_limit_exceeded when one is full) and holds its worst-case
//                        cost against the key's and its team's budgets (429
//                        insufficient_quota when it does not fit)
// Both block on the database on a miss or a hold: call them off the event loop. The hold
// is settled by the ledger writer with the call's record (ledger/hold_settlement.hpp).
#include "admit/hold_amount.hpp"
#include "governance/store.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace turnout::admit {

struct AdmitSettings {
  bool allow_unpriced = false;
  // governance.on_insufficient: clamp. A call whose hold does not fit is held at the
  // largest maximum output that does, and forwarded with that max_completion_tokens.
  bool clamp_output = false;
  std::chrono::milliseconds key_cache_ttl{1000};
  std::size_t key_cache_max_entries = 100'000;  // beyond: the cache starts over (bounded memory)
};

// A verified key and its team, as of the last lookup.
struct KeyGrant {
  governance::KeyRecord key;
  std::optional<governance::TeamRecord> team;
  // Whether any limit applies: such a key fails closed when the database is away.
  bool limited() const { return key.limits.any() || (team && team->limits.any()); }
};

using Header = std::pair<std::string, std::string>;

// A refusal in the OpenAI error shape, with the headers that go with it. The message
// names the key's public id, never its secret.
struct Refusal {
  unsigned status = 400;
  // What refused, for metrics: budget, rpm, tpm, max_parallel, model_not_allowed,
  // model_unpriced, unbounded_output, governance_unavailable, invalid_api_key.
  std::string reason;
  std::string type;
  std::string code;
  std::string param;
  std::string message;
  std::vector<Header> headers;
};

struct Authenticated {
  std::shared_ptr<const KeyGrant> grant;  // set when admitted
  std::optional<Refusal> refusal;
};

struct Admitted {
  std::string hold_id;  // "" when no budget applies (nothing to settle)
  std::vector<Header> headers;  // for every response to this call
  // Clamped (on_insufficient: clamp): the max_completion_tokens to forward instead of the
  // client's, so that the call's maximum cost fits the budget's room.
  std::optional<std::uint64_t> max_completion_tokens;
};

// Refusals of calls on known keys, by key, its team and reason, for /metrics and /stats.
// Label sets are capped: past the cap, new ones count under key "other" (keys are made by
// an admin, but nothing else bounds how many there are).
struct RefusalCount {
  std::string key_id;
  std::string team_id;  // "" for a key without a team
  std::string reason;
  std::uint64_t count = 0;
};

class RefusalCounter {
 public:
  explicit RefusalCounter(std::size_t max_label_sets = 1000) : max_label_sets_(max_label_sets) {}
  void add(const KeyGrant& grant, std::string_view reason);
  std::vector<RefusalCount> snapshot() const;

 private:
  const std::size_t max_label_sets_;
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, std::string>, std::uint64_t> counts_;
};

// The wall clock in unix ms; tests inject their own.
using NowMs = std::function<std::int64_t()>;
std::int64_t system_now_ms();

class LeasePool;

class Admission {
 public:
  Admission(governance::GovernanceStore& store, AdmitSettings settings, NowMs now = system_now_ms);

  // `cache_only`: answers only from a fresh cache entry (nullopt on a miss), so the event
  // loop can try it before handing the lookup to a thread that may wait on the database.
  std::optional<Authenticated> authenticate(std::string_view token, bool cache_only);

  // `hold_ttl`: how long the call may take at most; a hold not settled by then is charged
  // in full by whichever replica sweeps it.
  std::variant<Admitted, Refusal> admit(const KeyGrant& grant, const CallCost& cost, std::chrono::milliseconds hold_ttl);

  // Drops a key from the cache (revocation through this replica's admin API).
  void forget(const std::string& public_id);
  // Drops every cached key of the team (its limits or expiry changed).
  void forget_team(const std::string& team_id);

  const RefusalCounter& refusals() const { return refusals_; }

  // Lease mode (lease_pool.hpp): calls on keys whose only limits are budgets are admitted
  // against this replica's leases. `pool` outlives the admission's use.
  void use_leases(LeasePool& pool) { leases_ = &pool; }
  // The call's record was handed to the ledger with its actual cost: a lease call's
  // worst case leaves the lease's in-flight part.
  void call_recorded(std::string_view hold_id, std::int64_t cost_pico);

 private:
  struct CacheEntry {
    std::shared_ptr<const KeyGrant> grant;  // null: no such key (negative entry)
    std::chrono::steady_clock::time_point fetched;
  };
  enum class Lookup { fresh, stale_fallback, miss, unavailable };
  // The cached entry, refreshed from the database when stale (unless cache_only); a stale
  // entry when the database cannot be read (stale_fallback).
  Lookup lookup(const std::string& public_id, bool cache_only, CacheEntry& entry);

  std::variant<Admitted, Refusal> decide(const KeyGrant& grant, const CallCost& cost,
                                         std::chrono::milliseconds hold_ttl);

  // Lease mode (lease_admission.cpp): `request` as a strict hold would be taken.
  std::variant<Admitted, Refusal> admit_on_lease(const KeyGrant& grant, const governance::HoldRequest& request);

  governance::GovernanceStore& store_;
  LeasePool* leases_ = nullptr;  // lease mode only
  const AdmitSettings settings_;
  RefusalCounter refusals_;
  const NowMs now_;
  std::mutex cache_mutex_;
  std::unordered_map<std::string, CacheEntry> cache_;
};

// Refusals shared with the gateway's own checks.
Refusal invalid_key_refusal(std::string_view public_id, std::string_view why);
Refusal governance_unavailable(std::string_view public_id);
Refusal budget_refusal(const KeyGrant& grant, const governance::BudgetShortfall& shortfall, std::int64_t now_ms);

}  // namespace turnout::admit
