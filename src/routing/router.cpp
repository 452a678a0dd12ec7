#include "routing/router.hpp"

#include <algorithm>
#include <limits>
#include <optional>
#include <string>

namespace turnout::routing {
namespace {

// Why a model cannot take a request.
enum class Misfit { none, context_window, output_limit };

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  std::uint64_t sum = 0;
  return __builtin_add_overflow(a, b, &sum) ? std::numeric_limits<std::uint64_t>::max() : sum;
}

// docs/REFERENCE.md §4.3 Context fit: prompt + requested output must fit the context
// window (0: unknown, not checked). A model with max_output_tokens also cannot take a
// request asking for more output than it can produce: sending it would only earn the
// upstream's 400. The model's own count is taken only when the bound cannot prove the
// fit: every token covers at least one byte, so a window the bound fits the count fits.
Misfit misfit(Candidate& candidate, const std::optional<std::uint64_t>& max_output_tokens, const RouteInput& input) {
  const std::uint64_t requested_output = input.requested_output_tokens;
  if (candidate.context_window != 0 &&
      saturating_add(input.prompt_token_bound, requested_output) > candidate.context_window) {
    if (!candidate.prompt_tokens) candidate.prompt_tokens = input.count_prompt(candidate.encoding);
    if (saturating_add(*candidate.prompt_tokens, requested_output) > candidate.context_window)
      return Misfit::context_window;
  }
  if (max_output_tokens && requested_output > *max_output_tokens) return Misfit::output_limit;
  return Misfit::none;
}

// Uncounted: misfit() counts it when the fit needs it.
Candidate candidate_for(const config::ModelConfig& model, std::string route) {
  return Candidate{model.name,   model.upstream_name,  model.provider, std::move(route),
                   model.encoding, std::nullopt, model.context_window, model.rates};
}

// Worded as OpenAI words these errors, plus the model, so SDK users recognise them.
// The limit is taken by reference: GCC 12 at -O3 reports a by-value copy of this optional
// as maybe-uninitialized (a false positive that failed the Release build with -Werror).
RouteError misfit_error(Misfit reason, const Candidate& candidate,
                        const std::optional<std::uint64_t>& max_output_tokens, std::uint64_t requested_output) {
  const std::string model = " (model: " + candidate.model + ")";
  const std::uint64_t prompt_tokens = candidate.prompt_tokens.value_or(0);  // counted by misfit()
  if (reason == Misfit::output_limit) {
    const std::string requested = std::to_string(requested_output);
    return RouteError{RouteErrorKind::max_tokens_too_large,
                      "max_tokens is too large: " + requested + ". This model supports at most " +
                          std::to_string(max_output_tokens.value_or(0)) +
                          " completion tokens, whereas you provided " + requested + "." + model};
  }
  return RouteError{RouteErrorKind::context_length_exceeded,
                    "This model's maximum context length is " + std::to_string(candidate.context_window) +
                        " tokens. However, you requested " +
                        std::to_string(saturating_add(prompt_tokens, requested_output)) + " tokens (" +
                        std::to_string(prompt_tokens) + " in the messages, " +
                        std::to_string(requested_output) +
                        " in the completion). Please reduce the length of the messages or completion." + model};
}

bool is_alias(const config::Config& config, std::string_view model) {
  const auto& aliases = config.routing.aliases;
  return std::find(aliases.begin(), aliases.end(), model) != aliases.end();
}

// An explicit model the configuration does not list (allow_unknown_models): the default
// provider, the name sent as is, prices and context window from the built-in table when
// it knows the model (else unpriced, and no context check).
Result<Candidate, RouteError> unknown_model_candidate(const config::Config& config, const RouteInput& input) {
  const std::string name(input.requested_model);
  const config::ProviderConfig* provider = config.default_provider();
  if (provider == nullptr) {
    return RouteError{RouteErrorKind::no_provider, "no provider is configured to serve model `" + name + "`"};
  }
  const pricing::BuiltinModel* builtin = pricing::builtin_model(name);
  const auto encoding = tokenizer::encoding_for_model(name, config.routing.encoding);
  return Candidate{name,
                   name,
                   provider->name,
                   "explicit",
                   encoding,
                   input.count_prompt(encoding),
                   builtin ? builtin->context_window : 0,
                   builtin ? builtin->rates : pricing::Rates{}};
}

// docs/REFERENCE.md §4.1 Explicit model: the requested model, which must fit; no other
// model is tried.
Result<Candidate, RouteError> route_explicit(const config::Config& config, const RouteInput& input) {
  const config::ModelConfig* model = config.find_model(input.requested_model);
  if (model == nullptr && !config.routing.allow_unknown_models) {
    return RouteError{RouteErrorKind::model_not_found,
                      "The model `" + std::string(input.requested_model) +
                          "` does not exist or you do not have access to it."};
  }
  auto candidate = model ? Result<Candidate, RouteError>(candidate_for(*model, "explicit"))
                         : unknown_model_candidate(config, input);
  if (!candidate) return candidate;
  // The explicit model's count is the routing count (Decision): always taken.
  if (!candidate->prompt_tokens) candidate->prompt_tokens = input.count_prompt(candidate->encoding);
  const std::optional<std::uint64_t> max_output = model ? model->max_output_tokens : std::nullopt;
  const Misfit reason = misfit(*candidate, max_output, input);
  if (reason != Misfit::none) return misfit_error(reason, *candidate, max_output, input.requested_output_tokens);
  return candidate;
}

// docs/REFERENCE.md §4.2 Tiers and §4.3 Context fit: the first tier whose `below` exceeds
// the count; if its model does not fit, the next tier whose model does (route
// "context-fit"). When none fits, the error quotes the model with the largest context
// window: the closest the request came to fitting.
Result<Candidate, RouteError> route_by_tiers(const config::Config& config, const RouteInput& input,
                                             std::uint64_t routing_tokens) {
  const auto& tiers = config.routing.tiers;
  // Validation guarantees that the last tier has no `below`, so some tier always matches.
  const auto first = std::find_if(tiers.begin(), tiers.end(),
                                  [&](const config::Tier& tier) { return !tier.below || routing_tokens < *tier.below; });

  std::optional<RouteError> closest_miss;
  std::uint64_t closest_window = 0;
  for (auto tier = first; tier != tiers.end(); ++tier) {
    const config::ModelConfig* model = config.find_model(tier->model);
    if (model == nullptr) continue;  // validation guarantees tier models exist
    Candidate candidate = candidate_for(*model, tier == first ? tier->name : "context-fit");
    const Misfit reason = misfit(candidate, model->max_output_tokens, input);
    if (reason == Misfit::none) return candidate;
    if (!closest_miss || candidate.context_window > closest_window) {
      closest_miss = misfit_error(reason, candidate, model->max_output_tokens, input.requested_output_tokens);
      closest_window = candidate.context_window;
    }
  }
  if (closest_miss) return *closest_miss;
  return RouteError{RouteErrorKind::no_provider, "no routing tier is configured"};
}

// docs/REFERENCE.md §4.4 Retries, fallbacks and cooldown (chosen here, used by the
// forwarding stage): the primary's fallbacks that fit.
std::vector<Candidate> fitting_fallbacks(const config::Config& config, const Candidate& primary,
                                         const RouteInput& input) {
  std::vector<Candidate> fallbacks;
  const auto listed = config.routing.fallbacks.find(primary.model);
  if (listed == config.routing.fallbacks.end()) return fallbacks;
  for (const std::string& name : listed->second) {
    const config::ModelConfig* model = config.find_model(name);
    if (model == nullptr) continue;  // validation guarantees fallback models exist
    Candidate candidate = candidate_for(*model, "fallback:" + primary.model);
    if (misfit(candidate, model->max_output_tokens, input) == Misfit::none) {
      fallbacks.push_back(std::move(candidate));
    }
  }
  return fallbacks;
}

}  // namespace

Result<Decision, RouteError> decide(const config::Config& config, const RouteInput& input) {
  Decision decision;
  const bool routed = input.requested_model.empty() || is_alias(config, input.requested_model);
  if (routed) {
    decision.routing_encoding = config.routing.encoding;
    decision.routing_prompt_tokens = input.count_prompt(decision.routing_encoding);
    auto primary = route_by_tiers(config, input, decision.routing_prompt_tokens);
    if (!primary) return primary.error();
    decision.primary = std::move(*primary);
  } else {
    auto primary = route_explicit(config, input);
    if (!primary) return primary.error();
    decision.primary = std::move(*primary);
    decision.routing_encoding = decision.primary.encoding;
    decision.routing_prompt_tokens = *decision.primary.prompt_tokens;
  }
  decision.fallbacks = fitting_fallbacks(config, decision.primary, input);
  // A model counting in the routing encoding has its count already: no reason to leave it out.
  const auto share_routing_count = [&](Candidate& candidate) {
    if (candidate.encoding == decision.routing_encoding) candidate.prompt_tokens = decision.routing_prompt_tokens;
  };
  share_routing_count(decision.primary);
  for (Candidate& fallback : decision.fallbacks) share_routing_count(fallback);
  return decision;
}

}  // namespace turnout::routing
