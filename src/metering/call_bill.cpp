#include "metering/call_bill.hpp"

#include <fmt/format.h>

namespace turnout::metering {

void bill_record(ledger::CallRecord& record, const MeteredUsage& metered, const pricing::Rates& served,
                 const pricing::Rates* baseline) {
  record.usage = metered.usage;
  record.usage_reported = metered.reported;
  record.cost = pricing::cost(served, record.usage);
  record.baseline_cost = baseline ? pricing::cost(*baseline, record.usage) : std::nullopt;
}

void add_gateway_fields(std::string& body, const std::optional<pricing::Money>& cost,
                        std::optional<double> latency_ms) {
  while (!body.empty() && (body.back() == ' ' || body.back() == '\n' || body.back() == '\r' || body.back() == '\t'))
    body.pop_back();
  if (body.empty() || body.back() != '}') return;
  body.pop_back();
  const std::size_t last = body.find_last_not_of(" \n\r\t");
  const bool empty_object = last != std::string::npos && body[last] == '{';
  body += empty_object ? "\"cost_usd\":" : ",\"cost_usd\":";
  body += cost ? pricing::format_usd(*cost) : "null";
  if (latency_ms) body += fmt::format(",\"latency_ms\":{:.3f}", *latency_ms);
  body.push_back('}');
}

void set_call_headers(boost::beast::http::fields& fields, const CallHeaders& headers) {
  fields.set("x-turnout-model", headers.model);
  fields.set("x-turnout-route", headers.route);
  fields.set("x-turnout-prompt-tokens", std::to_string(headers.routing_prompt_tokens));
  if (headers.model_prompt_tokens)
    fields.set("x-turnout-model-prompt-tokens", std::to_string(*headers.model_prompt_tokens));
  fields.set("x-turnout-attempts", std::to_string(headers.attempts));
  fields.set("x-turnout-overhead-us", std::to_string(headers.overhead_us));
  if (headers.cost) fields.set("x-turnout-cost-usd", pricing::format_usd(*headers.cost));
}

}  // namespace turnout::metering
