#include "admit/hold_amount.hpp"

#include <algorithm>
#include <cstdint>

namespace turnout::admit {

std::optional<std::uint64_t> max_output_tokens(const CandidateCost& candidate, std::uint64_t requested) {
  std::optional<std::uint64_t> limit = candidate.max_output_tokens;
  if (candidate.context_window > 0) {
    const std::uint64_t left =
        candidate.context_window > candidate.prompt_tokens ? candidate.context_window - candidate.prompt_tokens : 0;
    limit = limit ? std::min(*limit, left) : left;
  }
  if (requested > 0) return limit ? std::min(*limit, requested) : requested;
  return limit;
}

Result<std::int64_t, HoldAmountError> hold_amount(const CallCost& cost, bool allow_unpriced) {
  std::int64_t largest = 0;
  for (const CandidateCost& candidate : cost.candidates) {
    if (!candidate.rates.priced()) {
      if (!allow_unpriced) return HoldAmountError{HoldProblem::unpriced, candidate.model};
      continue;  // explicitly allowed: held (and charged) at nothing
    }
    const auto output = max_output_tokens(candidate, cost.requested_output_tokens);
    if (!output) return HoldAmountError{HoldProblem::unbounded_output, candidate.model};
    std::int64_t input = 0;
    std::int64_t completion = 0;
    std::int64_t total = 0;
    const auto tokens = [](std::uint64_t n) { return static_cast<std::int64_t>(std::min<std::uint64_t>(n, INT64_MAX)); };
    if (__builtin_mul_overflow(*candidate.rates.input_pico_per_token, tokens(candidate.prompt_tokens), &input) ||
        __builtin_mul_overflow(*candidate.rates.output_pico_per_token, tokens(*output), &completion) ||
        __builtin_mul_overflow(completion, tokens(std::max<std::uint64_t>(cost.choices, 1)), &completion) ||
        __builtin_add_overflow(input, completion, &total))
      return HoldAmountError{HoldProblem::too_large, candidate.model};
    largest = std::max(largest, total);
  }
  return largest;
}

std::optional<std::uint64_t> clamped_output_tokens(const CallCost& cost, std::int64_t room_pico, bool allow_unpriced) {
  std::uint64_t upper = 0;  // the call's largest maximum output as it stands
  for (const CandidateCost& candidate : cost.candidates) {
    const auto output = max_output_tokens(candidate, cost.requested_output_tokens);
    if (!output) return std::nullopt;
    upper = std::max(upper, *output);
  }
  const auto fits = [&](std::uint64_t output) {
    CallCost clamped = cost;
    clamped.requested_output_tokens = output;
    auto amount = hold_amount(clamped, allow_unpriced);
    return amount && *amount <= room_pico;
  };
  if (upper == 0 || !fits(1)) return std::nullopt;
  // The hold grows with the maximum output: the largest that fits, by bisection.
  std::uint64_t low = 1;  // fits
  std::uint64_t high = upper;
  while (low < high) {
    const std::uint64_t middle = low + (high - low + 1) / 2;
    if (fits(middle)) {
      low = middle;
    } else {
      high = middle - 1;
    }
  }
  return low;
}

Result<std::uint64_t, HoldAmountError> reserved_tokens(const CallCost& cost) {
  std::uint64_t largest = 0;
  for (const CandidateCost& candidate : cost.candidates) {
    const auto output = max_output_tokens(candidate, cost.requested_output_tokens);
    if (!output) return HoldAmountError{HoldProblem::unbounded_output, candidate.model};
    std::uint64_t total = 0;
    if (__builtin_mul_overflow(*output, std::max<std::uint64_t>(cost.choices, 1), &total) ||
        __builtin_add_overflow(total, candidate.prompt_tokens, &total) || total > INT64_MAX)
      return HoldAmountError{HoldProblem::too_large, candidate.model};
    largest = std::max(largest, total);
  }
  return largest;
}

}  // namespace turnout::admit
