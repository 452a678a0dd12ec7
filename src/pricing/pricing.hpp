#pragma once
// Exact money arithmetic and per-model prices. Costs are integers counted in pico-dollars
// (1e-12 USD): a price per 1k tokens with up to 9 decimal places (i.e. down to $0.001 per
// million tokens) is a whole number of pico-dollars per token, so every cost is exact and
// sums never drift. An int64 of pico-dollars holds up to about $9.2 million; arithmetic
// that would exceed it is detected (checked_add, cost) instead of wrapping.
#include "common/result.hpp"

#include <cstdint>
#include <optional>
#include <span>
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

// a + b, or nullopt when the sum does not fit in an int64 of pico-dollars.
std::optional<Money> checked_add(Money a, Money b);

// Shortest exact decimal text of a pico-dollar amount (e.g. "0.000123", "12", "-0.5"):
// usable verbatim as a JSON number.
std::string format_usd(Money m);
std::string format_usd_pico(std::int64_t pico);  // same, for a raw pico count (or a sum)

// Parses a decimal price per 1,000 tokens ("0.00015", "2.5e-3" is rejected: plain
// decimals only; YAML gives them as text) into pico-dollars per token. No floating point:
// digits beyond the 9th decimal must be zeros, negatives and signs are rejected, and the
// error message says which rule the text broke.
Result<std::int64_t> parse_price_per_1k(std::string_view decimal);

// Per-token prices of one model; an unset input or output price means "unpriced".
struct Rates {
  std::optional<std::int64_t> input_pico_per_token;
  std::optional<std::int64_t> output_pico_per_token;
  std::optional<std::int64_t> cached_input_pico_per_token;  // unset: cached tokens at input price

  bool priced() const { return input_pico_per_token && output_pico_per_token; }
  bool operator==(const Rates&) const = default;
};

struct Usage {
  std::uint64_t prompt_tokens = 0;      // includes cached tokens (as OpenAI reports)
  std::uint64_t completion_tokens = 0;
  std::uint64_t cached_tokens = 0;      // prompt_tokens_details.cached_tokens
};

// Exact cost of `usage` at `rates`: (prompt - cached) at the input price, cached at the
// cached price (the input price when none is set), completion at the output price.
// nullopt when the model is unpriced, and also when the cost would overflow an int64 of
// pico-dollars (a usage that large is not real; reporting it as unpriced beats a wrapped
// number). cached_tokens above prompt_tokens are capped at prompt_tokens.
std::optional<Money> cost(const Rates& rates, const Usage& usage);

// What the built-in table knows about one OpenAI chat model.
// What a model answers: chat (chat completions, Responses) or embeddings (POST /v1/embeddings).
enum class ModelKind { chat, embedding };

struct BuiltinModel {
  std::string_view name;
  Rates rates;
  std::uint64_t context_window = 0;     // input + output tokens; embeddings: per input
  std::uint64_t max_output_tokens = 0;  // largest completion the model produces
  ModelKind kind = ModelKind::chat;
};

// Built-in table of current OpenAI chat models (gpt-5 and gpt-4.1 families, o-series,
// gpt-4o variants, ...) and embedding models (text-embedding-3-small/-large, ada-002), so explicit calls to models not listed in the config are priced
// and context-checked. An exact name wins; otherwise a dated snapshot name
// ("gpt-4o-mini-2024-07-18") falls back to its base name. nullptr for an unknown model.
const BuiltinModel* builtin_model(std::string_view model);
const Rates* builtin_rates(std::string_view model);  // &builtin_model(model)->rates
std::span<const BuiltinModel> builtin_models();      // the whole table, sorted by name

}  // namespace turnout::pricing
