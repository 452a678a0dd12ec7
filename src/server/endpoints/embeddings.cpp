// POST /v1/embeddings: parse -> count -> route (the named model) -> upstream (retries,
// fallbacks, cooldown) -> meter (input tokens only) -> ledger (endpoint "embeddings") ->
// response (docs/REFERENCE.md §2.14).
#include "metering/embeddings_usage.hpp"
#include "server/embeddings_plan.hpp"
#include "server/endpoints/buffered_call.hpp"
#include "server/endpoints/endpoint.hpp"

namespace turnout::server::endpoints {

boost::asio::awaitable<std::optional<HttpResponse>> embeddings(Services& services, Call& call) {
  Exchange& ex = call.exchange;
  ex.is_chat = true;  // a forwarded call: the access log carries its cost and attempts
  InflightCall inflight(services);
  const double arrived_unix = unix_now();
  auto planned = plan_embeddings_call(call.settings.config, call.worker.embeddings_parser, call.request.body());
  if (auto* error = std::get_if<ApiError>(&planned)) {
    services.metrics.record_rejection(error->code.empty() ? "invalid_request" : error->code, error->status);
    ex.error_type = error->code;
    co_return error_response(*error, call.request.version());
  }
  static const ForwardedCall kEmbeddings{
      ledger::kEmbeddingsEndpoint, "embeddings list",
      [](simdjson::dom::element root, const routing::Candidate& served) {
        return metering::meter_embeddings(root, served.prompt_tokens);
      }};
  co_return co_await forward_buffered(services, call, std::get<CallPlan>(planned), arrived_unix, kEmbeddings);
}

}  // namespace turnout::server::endpoints
