#include "pricing/pricing.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

namespace turnout::pricing {
namespace {

constexpr std::uint64_t kPicoPerDollar = 1'000'000'000'000;
// $1 per 1k tokens is 1e9 pico-dollars per token, so a price per 1k is exact in pico per
// token when it has at most 9 decimal places.
constexpr int kPriceDecimals = 9;
constexpr std::int64_t kPicoPerTokenPerDollarPer1k = 1'000'000'000;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// tokens * price, or nullopt if it does not fit in an int64.
std::optional<std::int64_t> checked_product(std::uint64_t tokens, std::int64_t price) {
  if (tokens > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return std::nullopt;
  }
  std::int64_t product = 0;
  if (__builtin_mul_overflow(static_cast<std::int64_t>(tokens), price, &product)) {
    return std::nullopt;
  }
  return product;
}

std::optional<std::int64_t> checked_sum(std::int64_t a, std::int64_t b) {
  std::int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) return std::nullopt;
  return sum;
}

// digits, or digits '.' digits: the only form a price may take.
bool is_plain_decimal(std::string_view text) {
  const std::size_t point = text.find('.');
  const std::string_view whole = text.substr(0, point);
  const auto all_digits = [](std::string_view part) { return !part.empty() && std::all_of(part.begin(), part.end(), is_digit); };
  return all_digits(whole) && (point == std::string_view::npos || all_digits(text.substr(point + 1)));
}

// "2.5e-3", "1E6": a number, but in a form that a price may not take.
bool is_exponent_form(std::string_view text) {
  const std::size_t marker = text.find_first_of("eE");
  if (marker == std::string_view::npos) return false;
  std::string_view exponent = text.substr(marker + 1);
  if (exponent.starts_with('-') || exponent.starts_with('+')) exponent.remove_prefix(1);
  return is_plain_decimal(text.substr(0, marker)) && !exponent.empty() &&
         std::all_of(exponent.begin(), exponent.end(), is_digit);
}

}  // namespace

std::optional<Money> checked_add(Money a, Money b) {
  auto sum = checked_sum(a.pico, b.pico);
  if (!sum) return std::nullopt;
  return Money{*sum};
}

std::string format_usd(Money m) { return format_usd_pico(m.pico); }

std::string format_usd_pico(std::int64_t pico) {
  // Magnitude as unsigned so that INT64_MIN has a representable absolute value.
  const bool negative = pico < 0;
  const std::uint64_t magnitude =
      negative ? std::uint64_t{0} - static_cast<std::uint64_t>(pico) : static_cast<std::uint64_t>(pico);
  const std::uint64_t whole = magnitude / kPicoPerDollar;
  std::uint64_t fraction = magnitude % kPicoPerDollar;

  std::string text = negative ? "-" : "";
  text += std::to_string(whole);
  if (fraction == 0) return text;

  // Twelve fractional digits, then drop the trailing zeros: the shortest exact form.
  std::string digits(12, '0');
  for (int i = 11; i >= 0; --i) {
    digits[static_cast<std::size_t>(i)] = static_cast<char>('0' + fraction % 10);
    fraction /= 10;
  }
  digits.erase(digits.find_last_not_of('0') + 1);
  text += '.';
  text += digits;
  return text;
}

Result<std::int64_t> parse_price_per_1k(std::string_view decimal) {
  if (decimal.starts_with('-')) return make_error("a price cannot be negative");
  if (is_exponent_form(decimal)) {
    return make_error("exponents are not allowed: write the plain decimal (0.0025, not 2.5e-3)");
  }
  if (!is_plain_decimal(decimal)) return make_error("expected a plain decimal number such as 0.0025");

  const std::size_t point = decimal.find('.');
  const std::string_view whole = decimal.substr(0, point);
  const std::string_view fraction =
      point == std::string_view::npos ? std::string_view{} : decimal.substr(point + 1);
  const std::size_t kept = std::min<std::size_t>(fraction.size(), kPriceDecimals);
  if (fraction.find_first_not_of('0', kept) != std::string_view::npos) {
    return make_error("more than 9 decimal places: the smallest price step is 0.000000001 per 1k tokens");
  }

  // whole * 1e9 + fraction digits scaled to 9 places, all checked.
  std::int64_t pico_per_token = 0;
  for (char digit : whole) {
    if (__builtin_mul_overflow(pico_per_token, std::int64_t{10}, &pico_per_token) ||
        __builtin_add_overflow(pico_per_token, std::int64_t{digit - '0'}, &pico_per_token)) {
      return make_error("price is too large");
    }
  }
  if (__builtin_mul_overflow(pico_per_token, kPicoPerTokenPerDollarPer1k, &pico_per_token)) {
    return make_error("price is too large");
  }
  std::int64_t fraction_pico = 0;
  for (std::size_t i = 0; i < kPriceDecimals; ++i) {
    const int digit = i < kept ? fraction[i] - '0' : 0;
    fraction_pico = fraction_pico * 10 + digit;
  }
  if (__builtin_add_overflow(pico_per_token, fraction_pico, &pico_per_token)) return make_error("price is too large");
  return pico_per_token;
}

std::optional<Money> cost(const Rates& rates, const Usage& usage) {
  if (!rates.priced()) return std::nullopt;
  const std::uint64_t cached = std::min(usage.cached_tokens, usage.prompt_tokens);
  const std::uint64_t uncached = usage.prompt_tokens - cached;
  const std::int64_t cached_price = rates.cached_input_pico_per_token.value_or(*rates.input_pico_per_token);

  const auto input = checked_product(uncached, *rates.input_pico_per_token);
  const auto cached_input = checked_product(cached, cached_price);
  const auto output = checked_product(usage.completion_tokens, *rates.output_pico_per_token);
  if (!input || !cached_input || !output) return std::nullopt;

  const auto prompt_total = checked_sum(*input, *cached_input);
  if (!prompt_total) return std::nullopt;
  const auto total = checked_sum(*prompt_total, *output);
  if (!total) return std::nullopt;
  return Money{*total};
}

}  // namespace turnout::pricing
