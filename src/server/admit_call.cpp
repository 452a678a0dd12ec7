#include "server/admit_call.hpp"

#include "server/endpoints/blocking.hpp"
#include "server/openai_error.hpp"

#include <algorithm>

namespace turnout::server {
namespace {

// Time to commit the record after the last byte, and clock skew between replicas.
constexpr std::chrono::seconds kHoldMargin{60};

admit::CandidateCost candidate_cost(const config::Config& config, const routing::Candidate& candidate) {
  admit::CandidateCost cost;
  cost.model = candidate.model;
  cost.rates = candidate.rates;
  // Planned with count_every_model whenever a key is presented (chat.cpp): exact, never a bound.
  cost.prompt_tokens = candidate.prompt_tokens.value();
  cost.context_window = candidate.context_window;
  if (const config::ModelConfig* model = config.find_model(candidate.model); model && model->max_output_tokens) {
    cost.max_output_tokens = model->max_output_tokens;
  } else if (const pricing::BuiltinModel* builtin = pricing::builtin_model(candidate.upstream_name);
             builtin && builtin->max_output_tokens > 0) {
    cost.max_output_tokens = builtin->max_output_tokens;
  }
  return cost;
}

}  // namespace

admit::CallCost call_cost(const config::Config& config, const CallPlan& plan) {
  admit::CallCost cost;
  cost.candidates.push_back(candidate_cost(config, plan.decision.primary));
  for (const routing::Candidate& fallback : plan.decision.fallbacks)
    cost.candidates.push_back(candidate_cost(config, fallback));
  cost.requested_output_tokens = plan.requested_output_tokens;
  cost.choices = plan.choices;
  // Only a chat completion has max_completion_tokens to inject (run_attempts does).
  cost.output_clampable = plan.operation == kChatOperation;
  return cost;
}

std::chrono::milliseconds hold_lifetime(const config::Config& config, const CallPlan& plan) {
  double seconds = 0;
  const auto add_candidate = [&](const routing::Candidate& candidate) {
    const config::ProviderConfig* provider = config.find_provider(candidate.provider);
    const double timeout = provider ? provider->timeout_s : 600;
    seconds += timeout * (config.routing.retries + 1) + config.routing.max_retry_wait_s * config.routing.retries;
  };
  add_candidate(plan.decision.primary);
  for (const routing::Candidate& fallback : plan.decision.fallbacks) add_candidate(fallback);
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000)) + kHoldMargin;
}

boost::asio::awaitable<std::variant<admit::Admitted, admit::Refusal>> admit_call(Services& services,
                                                                                 const config::Config& config,
                                                                                 const admit::KeyGrant& grant,
                                                                                 const CallPlan& plan) {
  const admit::CallCost cost = call_cost(config, plan);
  const auto lifetime = hold_lifetime(config, plan);
  admit::Admission* admission = services.options.admission;
  // Only references and trivial values captured: GCC 12 destroys the non-trivial captures
  // of a lambda handed through on_blocking_pool's co_await twice.
  auto hold = [admission, &grant, &cost, lifetime] { return admission->admit(grant, cost, lifetime); };
  co_return co_await endpoints::on_blocking_pool<std::variant<admit::Admitted, admit::Refusal>>(services,
                                                                                                std::move(hold));
}

HttpResponse refusal_response(const admit::Refusal& refusal, unsigned version) {
  HttpResponse res =
      error_response(ApiError{refusal.status, refusal.message, refusal.type, refusal.param, refusal.code}, version);
  for (const auto& [name, value] : refusal.headers) res.set(name, value);
  return res;
}

}  // namespace turnout::server
