// GET /dashboard and its files: the page that shows spend, savings, routing and latency
// (docs/REFERENCE.md §2.13). Everything it loads is embedded in the binary
// (dashboard_assets.S) and served from here, so it works offline and the
// Content-Security-Policy can allow 'self' only. The page and its files carry no data and
// need no key; the data it fetches (/stats, /stats/series) does.
#include "server/endpoints/endpoint.hpp"

#include <array>
#include <string_view>

extern "C" {
extern const char turnout_dashboard_html_begin[], turnout_dashboard_html_end[];
extern const char turnout_dashboard_css_begin[], turnout_dashboard_css_end[];
extern const char turnout_dashboard_js_begin[], turnout_dashboard_js_end[];
extern const char turnout_dashboard_chart_begin[], turnout_dashboard_chart_end[];
}

namespace turnout::server::endpoints {
namespace asio = boost::asio;

namespace {

struct Asset {
  std::string_view path;
  std::string_view content_type;
  std::string_view body;
};

std::string_view embedded(const char* begin, const char* end) {
  return {begin, static_cast<std::size_t>(end - begin)};
}

// No inline script or style anywhere (the page's code is in dashboard.js), so 'self' is
// all the policy allows; connect-src 'self' keeps the key from being sent anywhere else.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const Asset* find_asset(std::string_view path) {
  static const std::array assets{
      Asset{"/dashboard", "text/html; charset=utf-8",
            embedded(turnout_dashboard_html_begin, turnout_dashboard_html_end)},
      Asset{"/dashboard/dashboard.css", "text/css; charset=utf-8",
            embedded(turnout_dashboard_css_begin, turnout_dashboard_css_end)},
      Asset{"/dashboard/dashboard.js", "text/javascript; charset=utf-8",
            embedded(turnout_dashboard_js_begin, turnout_dashboard_js_end)},
      Asset{"/dashboard/chart.min.js", "text/javascript; charset=utf-8",
            embedded(turnout_dashboard_chart_begin, turnout_dashboard_chart_end)},
  };
  for (const Asset& asset : assets)
    if (asset.path == path) return &asset;
  return nullptr;
}

}  // namespace

asio::awaitable<std::optional<HttpResponse>> dashboard(Services&, Call& call) {
  const std::string_view target = call.request.target();
  const Asset* asset = find_asset(target.substr(0, target.find('?')));
  // The route table sends only the paths above here.
  HttpResponse res{asset ? http::status::ok : http::status::not_found, call.request.version()};
  res.set(http::field::content_type, asset ? asset->content_type : "text/plain; charset=utf-8");
  res.set("content-security-policy", kContentSecurityPolicy);
  res.set("x-content-type-options", "nosniff");
  res.set("referrer-policy", "no-referrer");
  res.set(http::field::cache_control, "no-cache");
  res.body() = asset ? std::string(asset->body) : std::string("not found\n");
  co_return res;
}

}  // namespace turnout::server::endpoints
