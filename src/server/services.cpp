#include "server/services.hpp"

namespace turnout::server {

Services::Services(std::shared_ptr<const ConfigSnapshot> initial, ledger::Ledger& ledger_in, GatewayOptions options_in)
    : settings(std::move(initial)), ledger(ledger_in), options(std::move(options_in)) {}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::int64_t overhead_us(const Exchange& exchange) {
  const auto overhead = Clock::now() - exchange.start - exchange.upstream - exchange.waiting;
  return std::chrono::duration_cast<std::chrono::microseconds>(overhead).count();
}

HttpResponse json_response(http::status status, unsigned version, std::string body) {
  HttpResponse res{status, version};
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

}  // namespace turnout::server
