// GET /v1/models: the routing aliases, the configured models and (when explicit unknown
// models go to the default provider) OpenAI's embedding models, in OpenAI's list format
// (docs/REFERENCE.md §2.4).
#include "common/json_text.hpp"
#include "pricing/pricing.hpp"
#include "server/endpoints/endpoint.hpp"

namespace turnout::server::endpoints {

boost::asio::awaitable<std::optional<HttpResponse>> models(Services&, Call& call) {
  std::string body = R"({"object":"list","data":[)";
  bool first = true;
  auto add = [&](std::string_view id, std::string_view owner) {
    if (!first) body.push_back(',');
    first = false;
    body += R"({"id":)";
    append_json_string(body, id);
    body += R"(,"object":"model","created":0,"owned_by":)";
    append_json_string(body, owner);
    body.push_back('}');
  };
  for (const auto& alias : call.settings.config.routing.aliases) add(alias, "turnout");
  for (const auto& [name, model] : call.settings.config.models) add(name, model.provider);
  // Embeddings are never tier-routed, so a client needs their names to call them.
  const config::ProviderConfig* fallback_provider = call.settings.config.default_provider();
  if (call.settings.config.routing.allow_unknown_models && fallback_provider != nullptr) {
    for (const pricing::BuiltinModel& builtin : pricing::builtin_models()) {
      if (builtin.kind == pricing::ModelKind::embedding && call.settings.config.find_model(builtin.name) == nullptr)
        add(builtin.name, fallback_provider->name);
    }
  }
  body += "]}";
  co_return json_response(http::status::ok, call.request.version(), std::move(body));
}

}  // namespace turnout::server::endpoints
