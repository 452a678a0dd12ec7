#pragma once
// The most a call can cost: for each model it may be served by (the primary and its
// fallbacks), input price × the exact prompt count + output price × its maximum output ×
// n, and the largest of those, so a fallback or retry on a pricier model is covered by the
// hold taken before the first attempt. Pure and exact (pico-dollars, overflow checked).
#include "common/result.hpp"
#include "pricing/pricing.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace turnout::admit {

struct CandidateCost {
  std::string model;
  pricing::Rates rates;
  std::uint64_t prompt_tokens = 0;
  std::uint64_t context_window = 0;               // 0: unknown
  std::optional<std::uint64_t> max_output_tokens;  // the model's own output limit
};

struct CallCost {
  std::vector<CandidateCost> candidates;     // primary first
  std::uint64_t requested_output_tokens = 0;  // max_completion_tokens / max_tokens; 0: none
  std::uint64_t choices = 1;                  // n
  // Whether the gateway may lower the maximum output by injecting max_completion_tokens
  // (governance.on_insufficient: clamp; chat completions only).
  bool output_clampable = false;
};

enum class HoldProblem {
  unpriced,          // a candidate has no price and governance.allow_unpriced is off
  unbounded_output,  // neither the request nor the model bounds the output
  too_large,         // beyond an int64 of pico-dollars
};

struct HoldAmountError {
  HoldProblem problem;
  std::string model;
};

// The maximum output of one candidate: the request's limit clamped to the model's output
// limit, else the model's output limit, else what the context window leaves; nullopt when
// nothing bounds it.
std::optional<std::uint64_t> max_output_tokens(const CandidateCost& candidate, std::uint64_t requested);

// The hold for the call; an unpriced candidate counts as 0 only when `allow_unpriced`.
Result<std::int64_t, HoldAmountError> hold_amount(const CallCost& cost, bool allow_unpriced);

// on_insufficient: clamp. The largest maximum output, at least 1 and at most what the call
// already allows, whose hold fits `room_pico`: input price × exact prompt tokens + output
// price × max × n ≤ room at every candidate. nullopt when not even one output token fits
// (or the hold cannot be computed). Exact: the same integer arithmetic as hold_amount.
std::optional<std::uint64_t> clamped_output_tokens(const CallCost& cost, std::int64_t room_pico, bool allow_unpriced);

// The tokens the call may use at most, reserved against a tokens-per-minute limit: for the
// candidate that may use the most, its exact prompt count + its maximum output × n.
// unbounded_output when a candidate has no bound on its output.
Result<std::uint64_t, HoldAmountError> reserved_tokens(const CallCost& cost);

}  // namespace turnout::admit
