// POST /admin/v1/reload (docs/REFERENCE.md §3.8): re-reads the config exactly as SIGHUP
// does (apply_reload) and says what happened: 200 with what changed and which keys need a
// restart, or 422 naming the config error's key path while the running config stays.
#include "common/json_text.hpp"
#include "server/endpoints/endpoint.hpp"
#include "server/openai_error.hpp"
#include "server/reload.hpp"

namespace turnout::server::endpoints {
namespace {

void append_list(std::string& out, const std::vector<std::string>& items) {
  out.push_back('[');
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out.push_back(',');
    append_json_string(out, items[i]);
  }
  out.push_back(']');
}

}  // namespace

boost::asio::awaitable<std::optional<HttpResponse>> admin_reload(Services& services, Call& call) {
  const unsigned version = call.request.version();
  if (!services.options.load_config)
    co_return error_response(ApiError{503, "This gateway has no config file to re-read.", "server_error", "",
                                      "reload_unavailable"},
                             version);
  const ReloadOutcome outcome = apply_reload(services, services.options.load_config());
  if (!outcome.applied)
    co_return error_response(ApiError{422, "The config was refused and the running one stays in effect: " + outcome.error,
                                      "invalid_request_error", config_error_key_path(outcome.error), "invalid_config"},
                             version);
  std::string body = R"({"status":"applied","config":)";
  append_json_string(body, outcome.config);
  body += R"(,"changed":)";
  append_list(body, outcome.changed);
  body += R"(,"restart_required":)";
  append_list(body, outcome.restart_required);
  body.push_back('}');
  co_return json_response(http::status::ok, version, std::move(body));
}

}  // namespace turnout::server::endpoints
