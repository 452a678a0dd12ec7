#pragma once
// Meter stage, part two: what a call cost, and how the cost reaches the client and the
// ledger — the same for buffered and streamed calls.
#include "ledger/ledger.hpp"
#include "metering/usage.hpp"
#include "pricing/pricing.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace turnout::metering {

// Fills the record's usage, cost (nullopt: the served model is unpriced) and baseline
// cost (the same usage at `baseline` rates; nullopt without a baseline model). A failed
// call with no usage costs nothing.
void bill_record(ledger::CallRecord& record, const MeteredUsage& metered, const pricing::Rates& served,
                 const pricing::Rates* baseline);

// Appends "cost_usd" (null when unpriced) and, if given, "latency_ms" as the last members
// of a JSON object, keeping every byte before them.
void add_gateway_fields(std::string& body, const std::optional<pricing::Money>& cost,
                        std::optional<double> latency_ms);
// What add_gateway_fields adds at most (a cost of 21 characters, a latency under 10^12 ms):
// the room reserved past an upstream body's length so that the splice does not copy it.
inline constexpr std::size_t kGatewayFieldsRoom = 96;

// The x-turnout-* headers of a chat response (docs/REFERENCE.md §2.9).
struct CallHeaders {
  std::string_view model;                 // configured name of the model that served
  std::string_view route;                 // tier, explicit, context-fit, fallback:<from>
  std::uint64_t routing_prompt_tokens = 0;  // the count that decided the route
  // The served model's own count when its encoding differs from the routing count's.
  std::optional<std::uint64_t> model_prompt_tokens;
  unsigned attempts = 0;
  std::int64_t overhead_us = 0;
  std::optional<pricing::Money> cost;     // buffered responses only; unset: no header
};
// Appends the headers as "name: value\r\n" lines (listener::HttpResponse::raw_fields and
// the streamed head): written as text, not as Beast fields, one heap node each (issue 16).
void append_call_headers(std::string& out, const CallHeaders& headers);
// Room for those lines and an x-request-id: reserved first, the text is allocated once.
inline constexpr std::size_t kCallFieldsCapacity = 384;

}  // namespace turnout::metering
