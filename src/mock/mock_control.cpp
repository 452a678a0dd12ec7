// The control API of a mock connection (mock_connection.hpp): /_mock/config, /_mock/reset,
// /_mock/requests, /_mock/stats.
#include "mock/mock_connection.hpp"

#include "common/clock.hpp"
#include "mock/chat_call.hpp"
#include "mock/chat_reply.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

namespace turnout::mock {
namespace net = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using Request = Connection::Request;
using Response = Connection::Response;

net::awaitable<Next> Connection::control(const Request& request, std::string_view path) {
  const auto method = request.method();
  if (path == "/_mock/config" && method == http::verb::get) co_return co_await send_settings(request);
  if (path == "/_mock/config" && method == http::verb::post) {
    auto settings = settings_from_request(request);
    if (!settings)
      co_return co_await send(request, http::status::bad_request,
                              error_json(settings.error().message, "invalid_request_error"));
    state_.replace_settings(std::move(*settings));
    co_return co_await send_settings(request);
  }
  if (path == "/_mock/reset" && method == http::verb::post) {
    state_.reset();
    co_return co_await send_settings(request);
  }
  if (path == "/_mock/requests" && method == http::verb::get)
    co_return co_await send(request, http::status::ok, json::serialize(state_.recordings_json()));
  if (path == "/_mock/requests" && method == http::verb::delete_) {
    state_.clear_recordings();
    co_return co_await send(request, http::status::ok, R"({"requests":[]})");
  }
  if (path == "/_mock/stats" && method == http::verb::get)
    co_return co_await send(request, http::status::ok, json::serialize(state_.stats_json()));
  co_return co_await send_invalid_url(request, path);
}

Result<MockSettings> Connection::settings_from_request(const Request& request) const {
  if (request.body().empty()) return state_.startup_settings();
  boost::system::error_code ec;
  const auto body = json::parse(request.body(), ec);
  if (ec) return make_error("the settings are not valid JSON (" + ec.message() + ")");
  return settings_from_json(body, state_.startup_settings());
}

net::awaitable<Next> Connection::send_settings(const Request& request) {
  return send(request, http::status::ok,
              json::serialize(json::object{{"config", settings_to_json(*state_.settings())}}));
}

}  // namespace turnout::mock
