// Built-in table of OpenAI chat and embedding models: standard-tier prices, context windows, output
// limits. Used for explicit calls to models that the config does not list, and for config
// models that give no price or context window of their own.
//
// Sources (checked when this table was written):
// - BerriAI/litellm, model_prices_and_context_window.json (commit 00035b69f416): the
//   input_cost_per_token / cache_read_input_token_cost / output_cost_per_token,
//   max_input_tokens and max_output_tokens of each entry below;
// - OpenAI's pricing page (platform.openai.com/docs/pricing) as quoted by third parties
//   for o1-mini, which LiteLLM no longer lists ($1.10 / $0.55 cached / $4.40 per 1M;
//   128k context, 65,536 output).
// gpt-5's context window is its 272k input limit plus 128k output (OpenAI: 400k).
// Not listed on purpose: models whose price changes above a prompt size (gpt-5.4, gpt-5.5
// bill prompts over 272k tokens at double rate), which a flat per-token rate would
// under-charge, and Responses-only models (*-pro, *-codex) that chat calls cannot reach.
#include "pricing/pricing.hpp"

#include <algorithm>
#include <array>
#include <cstddef>

namespace turnout::pricing {
namespace {

// Prices in the table are written in micro-dollars per 1M tokens, which is the same
// number as pico-dollars per token: "$2.50 / 1M" is 2'500'000.
constexpr std::optional<std::int64_t> kNoCachedPrice = std::nullopt;

constexpr BuiltinModel model(std::string_view name, std::int64_t input, std::optional<std::int64_t> cached_input,
                             std::int64_t output, std::uint64_t context_window,
                             std::uint64_t max_output_tokens) {
  return BuiltinModel{name, Rates{input, output, cached_input}, context_window, max_output_tokens};
}

constexpr std::uint64_t kEmbeddingInputLimit = 8'191;

constexpr BuiltinModel embedding(std::string_view name, std::int64_t input) {
  return BuiltinModel{name, Rates{input, 0, kNoCachedPrice}, kEmbeddingInputLimit, 0, ModelKind::embedding};
}

// Sorted by name so that lookups are a binary search.
constexpr std::array kBuiltinModels = {
    //     name                       input       cached      output       context    max out
    model("gpt-3.5-turbo",              500'000, kNoCachedPrice,  1'500'000,    16'385,   4'096),
    model("gpt-3.5-turbo-0125",         500'000, kNoCachedPrice,  1'500'000,    16'385,   4'096),
    model("gpt-3.5-turbo-1106",       1'000'000, kNoCachedPrice,  2'000'000,    16'385,   4'096),
    model("gpt-3.5-turbo-16k",        3'000'000, kNoCachedPrice,  4'000'000,    16'385,   4'096),
    model("gpt-4",                   30'000'000, kNoCachedPrice, 60'000'000,     8'192,   4'096),
    model("gpt-4-0125-preview",      10'000'000, kNoCachedPrice, 30'000'000,   128'000,   4'096),
    model("gpt-4-0613",              30'000'000, kNoCachedPrice, 60'000'000,     8'192,   4'096),
    model("gpt-4-1106-preview",      10'000'000, kNoCachedPrice, 30'000'000,   128'000,   4'096),
    model("gpt-4-turbo",             10'000'000, kNoCachedPrice, 30'000'000,   128'000,   4'096),
    model("gpt-4-turbo-preview",     10'000'000, kNoCachedPrice, 30'000'000,   128'000,   4'096),
    model("gpt-4.1",                  2'000'000,        500'000,  8'000'000, 1'047'576,  32'768),
    model("gpt-4.1-mini",               400'000,        100'000,  1'600'000, 1'047'576,  32'768),
    model("gpt-4.1-nano",               100'000,         25'000,    400'000, 1'047'576,  32'768),
    model("gpt-4o",                   2'500'000,      1'250'000, 10'000'000,   128'000,  16'384),
    // The first gpt-4o snapshot kept its launch price and has no cached-input discount.
    model("gpt-4o-2024-05-13",        5'000'000, kNoCachedPrice, 15'000'000,   128'000,   4'096),
    model("gpt-4o-2024-08-06",        2'500'000,      1'250'000, 10'000'000,   128'000,  16'384),
    model("gpt-4o-2024-11-20",        2'500'000,      1'250'000, 10'000'000,   128'000,  16'384),
    model("gpt-4o-mini",                150'000,         75'000,    600'000,   128'000,  16'384),
    model("gpt-4o-mini-2024-07-18",     150'000,         75'000,    600'000,   128'000,  16'384),
    model("gpt-5",                    1'250'000,        125'000, 10'000'000,   400'000, 128'000),
    model("gpt-5-chat-latest",        1'250'000,        125'000, 10'000'000,   128'000,  16'384),
    model("gpt-5-mini",                 250'000,         25'000,  2'000'000,   400'000, 128'000),
    model("gpt-5-nano",                  50'000,          5'000,    400'000,   400'000, 128'000),
    model("gpt-5.1",                  1'250'000,        125'000, 10'000'000,   400'000, 128'000),
    model("gpt-5.1-chat-latest",      1'250'000,        125'000, 10'000'000,   128'000,  16'384),
    model("gpt-5.2",                  1'750'000,        175'000, 14'000'000,   400'000, 128'000),
    model("gpt-5.2-chat-latest",      1'750'000,        175'000, 14'000'000,   128'000,  16'384),
    model("o1",                      15'000'000,      7'500'000, 60'000'000,   200'000, 100'000),
    model("o1-mini",                  1'100'000,        550'000,  4'400'000,   128'000,  65'536),
    model("o3",                       2'000'000,        500'000,  8'000'000,   200'000, 100'000),
    model("o3-mini",                  1'100'000,        550'000,  4'400'000,   200'000, 100'000),
    model("o4-mini",                  1'100'000,        275'000,  4'400'000,   200'000, 100'000),
    // Embeddings bill input only: $0.13, $0.02 and $0.10 per 1M tokens ($0.00013,
    // $0.00002 and $0.0001 per 1,000); each input may hold up to 8,191 tokens.
    embedding("text-embedding-3-large",  130'000),
    embedding("text-embedding-3-small",   20'000),
    embedding("text-embedding-ada-002",  100'000),
};

static_assert(std::is_sorted(kBuiltinModels.begin(), kBuiltinModels.end(),
                             [](const BuiltinModel& a, const BuiltinModel& b) { return a.name < b.name; }));

const BuiltinModel* find_exact(std::string_view name) {
  const auto* it = std::lower_bound(kBuiltinModels.begin(), kBuiltinModels.end(), name,
                                    [](const BuiltinModel& m, std::string_view n) { return m.name < n; });
  if (it == kBuiltinModels.end() || it->name != name) return nullptr;
  return &*it;
}

bool is_digits(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "gpt-4o-mini-2024-07-18" -> "gpt-4o-mini"; names without a -YYYY-MM-DD suffix unchanged.
std::string_view without_date_suffix(std::string_view name) {
  constexpr std::size_t kSuffixLength = 11;  // "-YYYY-MM-DD"
  if (name.size() <= kSuffixLength) return name;
  const std::string_view suffix = name.substr(name.size() - kSuffixLength);
  const bool dated = suffix[0] == '-' && is_digits(suffix.substr(1, 4)) && suffix[5] == '-' &&
                     is_digits(suffix.substr(6, 2)) && suffix[8] == '-' && is_digits(suffix.substr(9, 2));
  return dated ? name.substr(0, name.size() - kSuffixLength) : name;
}

}  // namespace

const BuiltinModel* builtin_model(std::string_view model_name) {
  if (const BuiltinModel* exact = find_exact(model_name)) return exact;
  const std::string_view base = without_date_suffix(model_name);
  return base == model_name ? nullptr : find_exact(base);
}

const Rates* builtin_rates(std::string_view model_name) {
  const BuiltinModel* found = builtin_model(model_name);
  return found ? &found->rates : nullptr;
}

std::span<const BuiltinModel> builtin_models() { return kBuiltinModels; }

}  // namespace turnout::pricing
