#pragma once
// Exact money arithmetic and per-model prices. Costs are integers counted in pico-dollars
// (1e-12 USD): a price per 1k tokens with up to 15 decimal places is a whole number of
// pico-dollars per token, so every cost is exact and sums never drift.
#include "common/result.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::pricing {

// An exact amount of US dollars, in pico-dollars.
struct Money {
  std::int64_t pico = 0;

  friend Money operator+(Money a, Money b) { return Money{a.pico + b.pico}; }
  Money& operator+=(Money o) {
    pico += o.pico;
    return *this;
  }
  friend bool operator==(Money, Money) = default;
  friend auto operator<=>(Money, Money) = default;
};

// Shortest exact decimal text of a pico-dollar amount (e.g. "0.000123", "12", "-0.5"):
// usable verbatim as a JSON number.
std::string format_usd(Money m);
std::string format_usd_pico(std::int64_t pico);  // same, for a raw pico count (or a sum)

// Parses a decimal price per 1,000 tokens ("0.00015", "2.5e-3" is rejected: plain
// decimals only; YAML gives them as text) into pico-dollars per token.
Result<std::int64_t> parse_price_per_1k(std::string_view decimal);

// Per-token prices of one model; an unset input or output price means "unpriced".
struct Rates {
  std::optional<std::int64_t> input_pico_per_token;
  std::optional<std::int64_t> output_pico_per_token;
  std::optional<std::int64_t> cached_input_pico_per_token;  // unset: cached tokens at input price

  bool priced() const { return input_pico_per_token && output_pico_per_token; }
};

struct Usage {
  std::uint64_t prompt_tokens = 0;      // includes cached tokens (as OpenAI reports)
  std::uint64_t completion_tokens = 0;
  std::uint64_t cached_tokens = 0;      // prompt_tokens_details.cached_tokens
};

// Exact cost of `usage` at `rates`; nullopt when the model is unpriced.
std::optional<Money> cost(const Rates& rates, const Usage& usage);

// Built-in price table for current OpenAI chat models (gpt-4.1 family, o-series, gpt-4o
// variants, ...), so explicit calls to models not listed in the config are priced.
// Returns nullptr for an unknown model.
const Rates* builtin_rates(std::string_view model);

}  // namespace turnout::pricing
