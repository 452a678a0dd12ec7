#include "admit/admission.hpp"

#include "admit/lease_pool.hpp"
#include "admit/rate_headers.hpp"

#include "governance/virtual_key.hpp"
#include "pricing/pricing.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace turnout::admit {
namespace {

using SteadyClock = std::chrono::steady_clock;

bool allows(const std::optional<std::vector<std::string>>& models, std::string_view model) {
  return !models || std::find(models->begin(), models->end(), model) != models->end();
}

}  // namespace

Refusal budget_refusal(const KeyGrant& grant, const governance::BudgetShortfall& shortfall, std::int64_t now_ms) {
  Refusal refusal;
  refusal.status = 429;
  refusal.type = "insufficient_quota";
  refusal.code = "insufficient_quota";
  refusal.reason = "budget";
  const bool team = shortfall.scope.starts_with("team:");
  refusal.message = fmt::format(
      "Budget exceeded for {} '{}' (key {}): limit ${}, used ${}, this request may cost up to ${}.",
      team ? "team" : "key", team ? shortfall.scope.substr(5) : grant.key.id, grant.key.id,
      pricing::format_usd_pico(shortfall.budget_pico), pricing::format_usd_pico(shortfall.used_pico),
      pricing::format_usd_pico(shortfall.requested_pico));
  // The official SDKs do not retry when told not to; a periodic budget says when it resets.
  refusal.headers.emplace_back("x-should-retry", "false");
  if (shortfall.period.end_ms) {
    const std::int64_t wait_ms = std::max<std::int64_t>(*shortfall.period.end_ms - now_ms, 0);
    refusal.message += fmt::format(" The budget resets in {} s.", (wait_ms + 999) / 1000);
    refusal.headers.emplace_back("retry-after", std::to_string((wait_ms + 999) / 1000));
  }
  return refusal;
}

namespace {

Refusal cost_refusal(const HoldAmountError& error) {
  Refusal refusal;
  refusal.status = 400;
  refusal.type = "invalid_request_error";
  switch (error.problem) {
    case HoldProblem::unpriced:
      refusal.code = "model_unpriced";
      refusal.reason = "model_unpriced";
      refusal.param = "model";
      refusal.message = fmt::format(
          "The model '{}' has no price, so a budget cannot be held for it (governance.allow_unpriced is off).",
          error.model);
      break;
    case HoldProblem::unbounded_output:
      refusal.code = "invalid_value";
      refusal.reason = "unbounded_output";
      refusal.param = "max_completion_tokens";
      refusal.message = fmt::format(
          "The model '{}' has no known output limit or context window: set max_completion_tokens so the budget "
          "hold can be bounded.",
          error.model);
      break;
    case HoldProblem::too_large:
      refusal.code = "invalid_value";
      refusal.reason = "unbounded_output";
      refusal.param = "max_completion_tokens";
      refusal.message = "The request's maximum cost is too large to hold against a budget.";
      break;
  }
  return refusal;
}

}  // namespace

std::int64_t system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Refusal invalid_key_refusal(std::string_view public_id, std::string_view why) {
  Refusal refusal;
  refusal.status = 401;
  refusal.type = "invalid_request_error";
  refusal.code = "invalid_api_key";
  refusal.reason = "invalid_api_key";
  refusal.message = public_id.empty() ? fmt::format("Incorrect API key: {}.", why)
                                      : fmt::format("The API key {} {}.", public_id, why);
  refusal.headers.emplace_back("www-authenticate", "Bearer");
  return refusal;
}

Refusal governance_unavailable(std::string_view public_id) {
  Refusal refusal;
  refusal.status = 503;
  refusal.type = "server_error";
  refusal.code = "governance_unavailable";
  refusal.reason = "governance_unavailable";
  refusal.message = fmt::format(
      "The limits of key {} cannot be checked right now (the ledger database is unreachable); retry shortly.",
      public_id);
  return refusal;
}

Admission::Admission(governance::GovernanceStore& store, AdmitSettings settings, NowMs now)
    : store_(store), settings_(settings), now_(std::move(now)) {}

void Admission::forget(const std::string& public_id) {
  std::lock_guard lock(cache_mutex_);
  cache_.erase(public_id);
  if (leases_ != nullptr) leases_->drop_key(public_id);  // lease mode: a changed key keeps no slice
}

Admission::Lookup Admission::lookup(const std::string& public_id, bool cache_only, CacheEntry& entry) {
  const auto now = SteadyClock::now();
  std::optional<CacheEntry> cached;
  {
    std::lock_guard lock(cache_mutex_);
    if (auto found = cache_.find(public_id); found != cache_.end()) cached = found->second;
  }
  if (cached && now - cached->fetched < settings_.key_cache_ttl) {
    entry = *cached;
    return Lookup::fresh;
  }
  if (cache_only) return Lookup::miss;

  CacheEntry fresh{nullptr, now};
  auto key = store_.find_key(public_id);
  if (key) {
    auto grant = std::make_shared<KeyGrant>();
    grant->key = std::move(*key);
    if (grant->key.team_id) {
      auto team = store_.find_team(*grant->key.team_id);
      if (team) {
        grant->team = std::move(*team);
      } else if (team.error().kind == governance::FailureKind::database) {
        key = team.error();
      }
    }
    if (key) fresh.grant = std::move(grant);
  }
  if (!key && key.error().kind == governance::FailureKind::database) {
    // The database is away: a stale entry still says who the key is and whether it is
    // limited; the caller fails a limited key closed.
    if (!cached) return Lookup::unavailable;
    entry = *cached;
    return Lookup::stale_fallback;
  }
  {
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() >= settings_.key_cache_max_entries) cache_.clear();
    cache_[public_id] = fresh;
  }
  entry = std::move(fresh);
  return Lookup::fresh;
}

std::optional<Authenticated> Admission::authenticate(std::string_view token, bool cache_only) {
  const auto presented = governance::parse_virtual_key(token);
  if (!presented) return Authenticated{nullptr, invalid_key_refusal("", "the key is not a well-formed virtual key")};
  const std::string public_id(presented->public_id);
  CacheEntry entry;
  const Lookup found = lookup(public_id, cache_only, entry);
  if (found == Lookup::miss) return std::nullopt;
  if (found == Lookup::unavailable) return Authenticated{nullptr, governance_unavailable(public_id)};
  if (!entry.grant || !governance::secret_matches(presented->secret, entry.grant->key.secret_sha256))
    return Authenticated{nullptr, invalid_key_refusal(public_id, "is not valid")};
  const KeyGrant& grant = *entry.grant;
  if (found == Lookup::stale_fallback && grant.limited())
    return Authenticated{nullptr, governance_unavailable(public_id)};
  const std::int64_t now_ms = now_();
  if (grant.key.revoked_at_ms) return Authenticated{nullptr, invalid_key_refusal(public_id, "has been revoked")};
  if (grant.key.expires_at_ms && *grant.key.expires_at_ms <= now_ms)
    return Authenticated{nullptr, invalid_key_refusal(public_id, "has expired")};
  if (grant.team && grant.team->expires_at_ms && *grant.team->expires_at_ms <= now_ms)
    return Authenticated{nullptr,
                         invalid_key_refusal(public_id, fmt::format("belongs to team '{}', which has expired",
                                                                    grant.team->id))};
  return Authenticated{entry.grant, std::nullopt};
}

void RefusalCounter::add(const KeyGrant& grant, std::string_view reason) {
  auto label_set = std::make_tuple(grant.key.id, grant.key.team_id.value_or(""), std::string(reason));
  std::lock_guard lock(mutex_);
  if (auto found = counts_.find(label_set); found != counts_.end()) {
    ++found->second;
    return;
  }
  if (counts_.size() >= max_label_sets_) label_set = std::make_tuple("other", "", std::string(reason));
  ++counts_[label_set];
}

std::vector<RefusalCount> RefusalCounter::snapshot() const {
  std::lock_guard lock(mutex_);
  std::vector<RefusalCount> out;
  out.reserve(counts_.size());
  for (const auto& [labels, count] : counts_)
    out.push_back(RefusalCount{std::get<0>(labels), std::get<1>(labels), std::get<2>(labels), count});
  return out;
}

void Admission::forget_team(const std::string& team_id) {
  std::lock_guard lock(cache_mutex_);
  std::erase_if(cache_, [&](const auto& entry) {
    const auto& grant = entry.second.grant;
    return grant && grant->key.team_id == team_id;
  });
  if (leases_ != nullptr) leases_->drop_team(team_id);
}

std::variant<Admitted, Refusal> Admission::admit(const KeyGrant& grant, const CallCost& cost,
                                                 std::chrono::milliseconds hold_ttl) {
  auto decided = decide(grant, cost, hold_ttl);
  if (const auto* refusal = std::get_if<Refusal>(&decided)) refusals_.add(grant, refusal->reason);
  return decided;
}

std::variant<Admitted, Refusal> Admission::decide(const KeyGrant& grant, const CallCost& cost,
                                                  std::chrono::milliseconds hold_ttl) {
  const std::string& model = cost.candidates.front().model;
  if (!allows(grant.key.models, model) || (grant.team && !allows(grant.team->models, model))) {
    Refusal refusal;
    refusal.status = 403;
    refusal.type = "invalid_request_error";
    refusal.code = "model_not_allowed";
    refusal.reason = "model_not_allowed";
    refusal.param = "model";
    refusal.message = fmt::format("The API key {} is not allowed to use the model '{}'.", grant.key.id, model);
    return refusal;
  }
  Admitted admitted;
  const auto either = [&](auto limit) {
    return bool(grant.key.limits.*limit) || (grant.team && bool(grant.team->limits.*limit));
  };
  const bool budgeted = either(&governance::Limits::budget_pico);
  const bool token_limited = either(&governance::Limits::tpm);
  const bool slotted = either(&governance::Limits::max_parallel);
  if (!budgeted && !token_limited && !slotted && !either(&governance::Limits::rpm)) return admitted;
  governance::HoldRequest request;
  // A hold row carries the budget reservation, the reserved tokens and the call's slot.
  request.budgeted = budgeted || token_limited || slotted;
  if (budgeted) {
    auto amount = hold_amount(cost, settings_.allow_unpriced);
    if (!amount) return cost_refusal(amount.error());
    request.amount_pico = *amount;
  }
  if (auto tokens = reserved_tokens(cost)) {
    request.tokens = *tokens;
  } else if (token_limited) {
    return cost_refusal(tokens.error());
  }
  if (request.budgeted) {
    auto hold_id = governance::random_hex(16);
    if (!hold_id) return governance_unavailable(grant.key.id);
    request.hold_id = *hold_id;
  }
  request.key = &grant.key;
  request.team = grant.team ? &*grant.team : nullptr;
  request.now_ms = now_();
  request.expires_at_ms = request.now_ms + hold_ttl.count();
  // Lease mode covers budgets only: a key under rpm, tpm or max_parallel is held strictly.
  if (leases_ != nullptr && budgeted && !token_limited && !slotted && !either(&governance::Limits::rpm))
    return admit_on_lease(grant, request);
  auto outcome = store_.hold(request);
  if (!outcome) return governance_unavailable(grant.key.id);
  // Clamp: hold what fits, at most twice more (the key's room, then its team's, may each
  // be the smaller); nothing was held or counted by a refused attempt.
  CallCost clamped = cost;
  for (int retry = 0; retry < 2 && settings_.clamp_output && cost.output_clampable && budgeted && outcome->refused &&
                      !outcome->rate_refused;
       ++retry) {
    const std::int64_t room = outcome->refused->budget_pico - outcome->refused->used_pico;
    const auto output = clamped_output_tokens(clamped, room, settings_.allow_unpriced);
    if (!output) break;  // not even one output token fits: refused as without clamp
    clamped.requested_output_tokens = *output;
    auto amount = hold_amount(clamped, settings_.allow_unpriced);
    if (!amount) break;
    request.amount_pico = *amount;
    if (auto tokens = reserved_tokens(clamped)) request.tokens = *tokens;
    auto again = store_.hold(request);
    if (!again) return governance_unavailable(grant.key.id);
    outcome = std::move(again);
    admitted.max_completion_tokens = *output;
  }
  if (outcome->refused || outcome->rate_refused) admitted.max_completion_tokens.reset();
  std::vector<Header> budget_headers;
  if (outcome->remaining_pico)
    budget_headers.emplace_back("x-turnout-budget-remaining-usd", pricing::format_usd_pico(*outcome->remaining_pico));
  if (outcome->rate_refused) {
    Refusal refusal = rate_refusal(grant, *outcome->rate_refused, request.now_ms);
    for (const auto& window : {outcome->requests, outcome->tokens}) {
      if (!window || window->kind == outcome->rate_refused->kind) continue;  // rate_refusal has those
      auto rate = request_limit_headers(*window, false, request.now_ms);
      refusal.headers.insert(refusal.headers.end(), rate.begin(), rate.end());
    }
    refusal.headers.insert(refusal.headers.end(), budget_headers.begin(), budget_headers.end());
    return refusal;
  }
  for (const auto& window : {outcome->requests, outcome->tokens}) {
    if (!window) continue;
    auto rate = request_limit_headers(*window, !outcome->refused, request.now_ms);
    budget_headers.insert(budget_headers.end(), rate.begin(), rate.end());
  }
  if (outcome->refused) {
    Refusal refusal = budget_refusal(grant, *outcome->refused, request.now_ms);
    refusal.headers.insert(refusal.headers.end(), budget_headers.begin(), budget_headers.end());
    return refusal;
  }
  admitted.hold_id = std::move(request.hold_id);
  admitted.headers = std::move(budget_headers);
  if (admitted.max_completion_tokens) {
    admitted.headers.emplace_back("x-turnout-clamped-max-completion-tokens",
                                  std::to_string(*admitted.max_completion_tokens));
  }
  return admitted;
}

}  // namespace turnout::admit
