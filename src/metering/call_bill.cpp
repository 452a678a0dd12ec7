#include "metering/call_bill.hpp"

#include "common/header_text.hpp"

#include <fmt/format.h>

#include <charconv>
#include <iterator>

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
  if (latency_ms) fmt::format_to(std::back_inserter(body), ",\"latency_ms\":{:.3f}", *latency_ms);
  body.push_back('}');
}

void append_call_headers(std::string& out, const CallHeaders& headers) {
  char digits[24];
  const auto number = [&digits](auto value) {
    return std::string_view(digits, std::to_chars(digits, digits + sizeof digits, value).ptr);
  };
  append_header_line(out, "x-turnout-model", headers.model);
  append_header_line(out, "x-turnout-route", headers.route);
  append_header_line(out, "x-turnout-prompt-tokens", number(headers.routing_prompt_tokens));
  if (headers.model_prompt_tokens)
    append_header_line(out, "x-turnout-model-prompt-tokens", number(*headers.model_prompt_tokens));
  append_header_line(out, "x-turnout-attempts", number(headers.attempts));
  append_header_line(out, "x-turnout-overhead-us", number(headers.overhead_us));
  if (headers.cost) append_header_line(out, "x-turnout-cost-usd", pricing::format_usd(*headers.cost));
}

}  // namespace turnout::metering
