#include "server/call_plan.hpp"

#include "tokenizer/chat_count.hpp"

#include <algorithm>
#include <array>
#include <optional>

namespace turnout::server {

std::variant<CallPlan, ApiError> plan_prompt(const config::Config& config, const PromptToRoute& prompt, tracing::CallTrace* trace,
                                             std::size_t parent_span) {
  // Each encoding is counted at most once per request, whatever routing asks.
  std::array<std::optional<std::uint64_t>, 2> counted;
  // Image and tool-definition constants differ by model family. An explicit model is
  // counted with its own; a routed prompt with the defaults (gpt-4o's), since the count
  // decides the model.
  const std::string_view requested = prompt.model.value_or(std::string_view{});
  const bool routed = requested.empty() || std::find(config.routing.aliases.begin(), config.routing.aliases.end(),
                                                     requested) != config.routing.aliases.end();
  tokenizer::ChatCountOptions count_options;
  if (!routed) {
    const config::ModelConfig* model = config.find_model(requested);
    count_options = tokenizer::chat_count_options_for_model(model ? model->upstream_name : requested);
  }
  count_options.default_image_tokens = config.routing.default_image_tokens;
  auto count_prompt = [&](tokenizer::EncodingId id) -> std::uint64_t {
    auto& slot = counted[static_cast<std::size_t>(id)];
    if (slot) return *slot;
    const std::size_t span =
        trace ? trace->start("count", tracing::SpanKind::internal, parent_span) : tracing::CallTrace::kNone;
    slot = tokenizer::count_chat_prompt(tokenizer::Encoding::get(id), prompt.prompt, count_options);
    if (span != tracing::CallTrace::kNone) {
      trace->set(span, "turnout.encoding", std::string(tokenizer::encoding_name(id)));
      trace->set(span, "turnout.prompt_tokens", static_cast<std::int64_t>(*slot));
      trace->end(span);
    }
    return *slot;
  };

  routing::RouteInput input;
  input.requested_model = requested;
  input.requested_output_tokens = prompt.requested_output_tokens;
  input.count_prompt = count_prompt;
  // The bound costs a pass over the bytes; a tokenizer pass costs tens of times more.
  if (!prompt.count_every_model) input.prompt_token_bound = tokenizer::chat_prompt_token_bound(prompt.prompt, count_options);
  auto decision = routing::decide(config, input);
  if (decision.has_error()) {
    const routing::RouteError& e = decision.error();
    switch (e.kind) {
      case routing::RouteErrorKind::context_length_exceeded:
        return ApiError{400, e.message, "invalid_request_error", std::string(prompt.prompt_param),
                        "context_length_exceeded"};
      case routing::RouteErrorKind::model_not_found:
        return ApiError{404, e.message, "invalid_request_error", "model", "model_not_found"};
      case routing::RouteErrorKind::max_tokens_too_large:
        return ApiError{400, e.message, "invalid_request_error", std::string(prompt.output_limit_param),
                        "invalid_value"};
      case routing::RouteErrorKind::no_provider:
        return ApiError{400, e.message, "invalid_request_error", "model", "model_not_found"};
    }
  }
  CallPlan plan;
  plan.requested_model = std::string(requested);
  plan.decision = std::move(*decision);
  plan.requested_output_tokens = prompt.requested_output_tokens;
  plan.count_options = count_options;
  // Counts the router took for one candidate serve every candidate in that encoding; with
  // count_every_model, the rest are taken now.
  const auto complete = [&](routing::Candidate& candidate) {
    if (candidate.prompt_tokens) return;
    const auto& slot = counted[static_cast<std::size_t>(candidate.encoding)];
    if (slot || prompt.count_every_model) candidate.prompt_tokens = count_prompt(candidate.encoding);
  };
  complete(plan.decision.primary);
  for (routing::Candidate& fallback : plan.decision.fallbacks) complete(fallback);
  return plan;
}

std::variant<CallPlan, ApiError> plan_call(const config::Config& config, RequestParser& parser,
                                           std::string_view body, tracing::CallTrace* trace, std::size_t parent_span,
                                           bool count_every_model) {
  auto parsed = parser.parse(body);
  if (auto* error = std::get_if<RequestError>(&parsed))
    return ApiError{400, std::move(error->message), "invalid_request_error", std::move(error->param),
                    std::move(error->code)};
  const ChatRequest& request = *std::get<const ChatRequest*>(parsed);
  auto planned = plan_prompt(config, PromptToRoute{request.model, request.requested_output_tokens, request.prompt,
                                                   "messages", "max_tokens", count_every_model},
                           trace, parent_span);
  if (auto* plan = std::get_if<CallPlan>(&planned)) {
    plan->stream = request.stream;
    plan->include_usage = request.include_usage;
    plan->choices = request.choices;
  }
  return planned;
}

std::optional<std::uint64_t> count_chat_prompt_again(RequestParser& parser, std::string_view body,
                                                     const CallPlan& plan, tokenizer::EncodingId encoding) {
  auto parsed = parser.parse(body);
  if (std::holds_alternative<RequestError>(parsed)) return std::nullopt;
  const ChatRequest& request = *std::get<const ChatRequest*>(parsed);
  return tokenizer::count_chat_prompt(tokenizer::Encoding::get(encoding), request.prompt, plan.count_options);
}

std::string route_json(const CallPlan& plan) {
  const routing::Candidate& c = plan.decision.primary;
  std::string out = R"({"model":)";
  append_json_string(out, c.model);
  out += R"(,"route":)";
  append_json_string(out, c.route);
  // The count the decision compared against the tiers (routing.encoding), and, when the
  // routed model counts differently, its own count (what context fit and cost use).
  out += R"(,"prompt_tokens":)" + std::to_string(plan.decision.routing_prompt_tokens);
  out += R"(,"encoding":)";
  append_json_string(out, tokenizer::encoding_name(plan.decision.routing_encoding));
  if (c.encoding != plan.decision.routing_encoding) {
    out += R"(,"model_prompt_tokens":)" + std::to_string(c.prompt_tokens.value_or(0));
    out += R"(,"model_encoding":)";
    append_json_string(out, tokenizer::encoding_name(c.encoding));
  }
  out += R"(,"context_window":)";
  out += c.context_window ? std::to_string(c.context_window) : "null";
  out += R"(,"estimated_input_cost_usd":)";
  // POST /route plans with count_every_model: the primary's count is always there.
  const auto cost = pricing::cost(c.rates, pricing::Usage{c.prompt_tokens.value_or(0), 0, 0});
  out += cost ? pricing::format_usd(*cost) : "null";
  // Responses bodies: part of the prompt has no published formula, or lives at the provider.
  out += R"(,"count_estimated":)";
  out += plan.count_estimated ? "true" : "false";
  out += R"(,"count_partial":)";
  out += plan.count_partial ? "true" : "false";
  out += "}";
  return out;
}

}  // namespace turnout::server
