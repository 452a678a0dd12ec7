// POST /v1/embeddings: parse -> count -> route (the named model) -> upstream (retries,
// fallbacks, cooldown) -> meter (input tokens only) -> ledger (endpoint "embeddings") ->
// response (docs/REFERENCE.md §2.14).
#include "metering/embeddings_usage.hpp"
#include "server/call_tracing.hpp"
#include "server/embeddings_plan.hpp"
#include "server/endpoints/buffered_call.hpp"
#include "server/endpoints/endpoint.hpp"

namespace turnout::server::endpoints {
namespace {

boost::asio::awaitable<std::optional<HttpResponse>> serve_embeddings(Services& services, Call& call) {
  Exchange& ex = call.exchange;
  ex.is_chat = true;  // a forwarded call: the access log carries its cost and attempts
  InflightCall inflight(services);
  const double arrived_unix = unix_now();
  const std::size_t route_span = ex.trace.start("route", tracing::SpanKind::internal);
  auto planned = plan_embeddings_call(call.settings.config, call.worker.embeddings_parser, call.request.body(),
                                      &ex.trace, route_span);
  ex.trace.end(route_span);
  if (auto refused = refuse_unplanned(services, call, planned, route_span)) co_return std::move(*refused);
  const CallPlan& plan = std::get<CallPlan>(planned);
  trace_plan(ex.trace, plan, route_span);
  static const ForwardedCall kEmbeddings{
      ledger::kEmbeddingsEndpoint, "embeddings list",
      [](simdjson::dom::element root, const routing::Candidate&, const metering::PromptCount& prompt_tokens) {
        return metering::meter_embeddings(root, prompt_tokens());
      }};
  co_return co_await forward_buffered(services, call, plan, arrived_unix, kEmbeddings);
}

}  // namespace

boost::asio::awaitable<std::optional<HttpResponse>> embeddings(Services& services, Call& call) {
  return serve_traced(services, call, kEmbeddingsOperation, &serve_embeddings);
}

}  // namespace turnout::server::endpoints
