#pragma once
// What every forwarded call (chat, embeddings, responses) leaves behind: its ledger record,
// started from the plan and the attempts, and its observation in /metrics.
#include "server/attempts.hpp"
#include "server/call_plan.hpp"
#include "server/services.hpp"

#include <string_view>

namespace turnout::server {

// The record's identity, routing and attempt fields; the meter stage fills usage and cost.
ledger::CallRecord start_record(const Services& services, const Exchange& ex, const CallPlan& plan,
                                const CallOutcome& outcome, double arrived_unix, std::string_view endpoint);

// The served model's prompt count, for the billing fallback of an answer without usage:
// the record's when the plan took it, else counted now (once; chat prompts, which alone
// may be planned without it) and kept in the record, which then reports it too.
std::uint64_t served_prompt_tokens(Call& call, const CallPlan& plan, const routing::Candidate& served,
                                   ledger::CallRecord& rec);

// Counts the finished call in /metrics under its endpoint (ledger::k*Endpoint).
void finish_metrics(Services& services, const Exchange& ex, const CallOutcome& outcome, unsigned status,
                    std::string_view endpoint);

}  // namespace turnout::server
