#pragma once
// The parts of the chat endpoint shared by its buffered answer (chat.cpp) and its
// streamed one (chat_stream.cpp).
#include "metering/call_bill.hpp"
#include "server/attempts.hpp"
#include "server/call_plan.hpp"
#include "server/openai_error.hpp"
#include "server/services.hpp"

namespace turnout::server::endpoints {

// The x-turnout-* headers for the call (the cost only for a buffered answer).
// `model_prompt_tokens`: the served model's count when taken (the record's).
metering::CallHeaders call_headers(const CallPlan& plan, const CallOutcome& outcome, const Exchange& exchange,
                                   std::optional<std::uint64_t> model_prompt_tokens,
                                   std::optional<pricing::Money> cost);

// The answer to a call the end of the shutdown grace cut: 503 `shutdown` (as JSON before
// the response started, as the stream's error event after).
ApiError shutdown_error(bool stream_started);

// Streaming: relays the upstream's server-sent events to the client as they arrive,
// meters usage (reported, or counted from the deltas), and ends a stream that failed
// midway with an error event and no [DONE], so a cut answer never looks complete.
// Writes the response itself; fills `record` (usage, cost, status, error, timings) and
// commits it to the ledger before the stream's last event ([DONE] or the error) is sent.
boost::asio::awaitable<void> relay_chat_stream(Services& services, Call& call, const CallPlan& plan,
                                               CallOutcome& outcome, ledger::CallRecord& record);

}  // namespace turnout::server::endpoints
