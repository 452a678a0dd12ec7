// GET /: a browser pointed at the gateway lands on the dashboard (docs/REFERENCE.md §2.13).
#include "server/endpoints/endpoint.hpp"

namespace turnout::server::endpoints {

boost::asio::awaitable<std::optional<HttpResponse>> root(Services&, Call& call) {
  HttpResponse res{http::status::found, call.request.version()};
  res.set(http::field::location, "/dashboard");
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = "See /dashboard\n";
  co_return res;
}

}  // namespace turnout::server::endpoints
