#include "server/embeddings_plan.hpp"

#include "tokenizer/embeddings_count.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <optional>

namespace turnout::server {

std::variant<CallPlan, ApiError> plan_embeddings_call(const config::Config& config, EmbeddingsRequestParser& parser,
                                                      std::string_view body, tracing::CallTrace* trace,
                                                      std::size_t parent_span) {
  auto parsed = parser.parse(body);
  if (auto* error = std::get_if<RequestError>(&parsed))
    return ApiError{400, std::move(error->message), "invalid_request_error", std::move(error->param),
                    std::move(error->code)};
  const EmbeddingsRequest& request = *std::get<const EmbeddingsRequest*>(parsed);

  // An embedding alias names its model; a chat alias (tiers of chat models) is refused.
  const auto alias = config.routing.embedding_aliases.find(request.model);
  const bool aliased = alias != config.routing.embedding_aliases.end();
  const auto& aliases = config.routing.aliases;
  if (!aliased && std::find(aliases.begin(), aliases.end(), request.model) != aliases.end())
    return ApiError{400,
                    fmt::format("Invalid 'model': `{}` routes chat calls; embeddings need an embedding model by "
                                "name (e.g. text-embedding-3-small), or an alias in routing.embedding_aliases.",
                                request.model),
                    "invalid_request_error", "model", "invalid_value"};

  // Each encoding is counted at most once per request.
  std::array<std::optional<tokenizer::EmbeddingCount>, 2> counted;
  auto count = [&](tokenizer::EncodingId id) -> const tokenizer::EmbeddingCount& {
    auto& slot = counted[static_cast<std::size_t>(id)];
    if (slot) return *slot;
    const std::size_t span =
        trace ? trace->start("count", tracing::SpanKind::internal, parent_span) : tracing::CallTrace::kNone;
    slot = tokenizer::count_embedding_inputs(tokenizer::Encoding::get(id), request.inputs);
    if (span != tracing::CallTrace::kNone) {
      trace->set(span, "turnout.encoding", std::string(tokenizer::encoding_name(id)));
      trace->set(span, "turnout.prompt_tokens", static_cast<std::int64_t>(slot->total));
      trace->end(span);
    }
    return *slot;
  };
  routing::RouteInput input;
  input.requested_model = aliased ? std::string_view(alias->second) : request.model;
  // The router checks its count against the context window: for embeddings that is the
  // per-input limit, so it is given the longest input; the totals are set below.
  input.count_prompt = [&](tokenizer::EncodingId id) { return count(id).largest; };
  auto decision = routing::decide(config, input);
  if (decision.has_error()) {
    const routing::RouteError& e = decision.error();
    switch (e.kind) {
      case routing::RouteErrorKind::context_length_exceeded:
      case routing::RouteErrorKind::max_tokens_too_large:
        return ApiError{400, e.message, "invalid_request_error", "input", "context_length_exceeded"};
      case routing::RouteErrorKind::model_not_found:
        return ApiError{404, e.message, "invalid_request_error", "model", "model_not_found"};
      case routing::RouteErrorKind::no_provider:
        return ApiError{400, e.message, "invalid_request_error", "model", "model_not_found"};
    }
  }
  CallPlan plan;
  plan.requested_model = std::string(request.model);
  plan.operation = kEmbeddingsOperation;
  plan.decision = std::move(*decision);
  if (aliased) plan.decision.primary.route = "alias:" + alias->first;
  plan.decision.primary.prompt_tokens = count(plan.decision.primary.encoding).total;
  for (routing::Candidate& fallback : plan.decision.fallbacks) fallback.prompt_tokens = count(fallback.encoding).total;
  plan.decision.routing_prompt_tokens = count(plan.decision.routing_encoding).total;
  if (*plan.decision.primary.prompt_tokens > kMaxEmbeddingRequestTokens)
    return ApiError{400,
                    fmt::format("Invalid 'input': the inputs hold {} tokens; at most {} are allowed per request.",
                                *plan.decision.primary.prompt_tokens, kMaxEmbeddingRequestTokens),
                    "invalid_request_error", "input", "invalid_value"};
  return plan;
}

}  // namespace turnout::server
