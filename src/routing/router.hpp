#pragma once
// Routing (docs/REFERENCE.md §4.1-§4.3): from the requested model and the prompt's token
// count to a decision. Pure: no I/O, no clock, no mutable state.
#include "common/result.hpp"
#include "config/config.hpp"

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::routing {

// One model the call may be sent to, in order of preference.
struct Candidate {
  std::string model;          // configured name (or the explicit unknown name)
  std::string upstream_name;  // sent upstream as `model`
  std::string provider;       // key into Config::providers
  std::string route;          // tier name, "explicit", "context-fit", "fallback:<from>"
  tokenizer::EncodingId encoding = tokenizer::EncodingId::cl100k_base;
  // The gateway's count in this model's encoding: always for the model that decided the
  // route (explicit) and for a model counting in routing.encoding; otherwise only when the
  // context fit needed it (RouteInput::prompt_token_bound did not prove it). The plan
  // completes it when something else needs it (call_plan.hpp).
  std::optional<std::uint64_t> prompt_tokens;
  std::uint64_t context_window = 0;  // 0: unknown (explicit unknown model; no fit check)
  pricing::Rates rates;              // config rates, else the built-in table, else unpriced
};

struct Decision {
  Candidate primary;
  std::vector<Candidate> fallbacks;  // routing.fallbacks that fit, in order
  // The count the rule used: with routing.encoding for a routed request; for an explicit
  // model (no tier rule) the primary's own count and encoding, so nothing is counted twice.
  std::uint64_t routing_prompt_tokens = 0;
  tokenizer::EncodingId routing_encoding = tokenizer::EncodingId::cl100k_base;
};

// How the server answers each kind (OpenAI's shapes):
//   context_length_exceeded  400 invalid_request_error, param "messages", code context_length_exceeded
//   max_tokens_too_large     400 invalid_request_error, param "max_tokens", code invalid_value
//                            (the requested output exceeds the model's max_output_tokens)
//   model_not_found          404 invalid_request_error, param "model", code model_not_found
//   no_provider              500: the configuration has no provider for an unknown model
enum class RouteErrorKind { context_length_exceeded, model_not_found, no_provider, max_tokens_too_large };

struct RouteError {
  RouteErrorKind kind;
  std::string message;  // client-facing, names the model and the numbers
};

struct RouteInput {
  std::string_view requested_model;        // "" when absent
  std::uint64_t requested_output_tokens = 0;  // max_completion_tokens, else max_tokens, else 0
  // Counts the prompt with an encoding; the caller memoises, so each encoding is counted once.
  std::function<std::uint64_t(tokenizer::EncodingId)> count_prompt;
  // At least the count in every encoding (tokenizer::chat_prompt_token_bound): a model
  // whose context window this bound plus the requested output fits is taken without its
  // own count. The maximum: no bound known, every context fit is counted.
  std::uint64_t prompt_token_bound = std::numeric_limits<std::uint64_t>::max();
};

Result<Decision, RouteError> decide(const config::Config& config, const RouteInput& input);

}  // namespace turnout::routing
