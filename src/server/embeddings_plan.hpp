#pragma once
// Parse -> count -> route for POST /v1/embeddings. Embeddings go to the model the client
// names (a configured model, or an unknown one on the default provider when
// routing.allow_unknown_models): the routing tiers hold chat models, so an alias such as
// "auto" is refused rather than sent to a model that cannot embed. Fallbacks listed for
// the named model apply as for chat.
#include "config/config.hpp"
#include "server/call_plan.hpp"
#include "server/embeddings_request.hpp"
#include "server/openai_error.hpp"

#include <string_view>
#include <variant>

namespace turnout::server {

// OpenAI's cap on the tokens of all inputs of one request.
inline constexpr std::uint64_t kMaxEmbeddingRequestTokens = 300'000;

// The plan's candidates carry the total count of the inputs (what is billed); the
// context check is made per input, as the models' limit (8,191 tokens) applies to each.
// With `trace`, each count is a span under `parent_span`.
std::variant<CallPlan, ApiError> plan_embeddings_call(const config::Config& config, EmbeddingsRequestParser& parser,
                                                      std::string_view body, tracing::CallTrace* trace = nullptr,
                                                      std::size_t parent_span = tracing::CallTrace::kNone);

}  // namespace turnout::server
