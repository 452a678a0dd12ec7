#pragma once
// The chat endpoint's use of the admit stage (src/admit): the plan's candidates as the
// cost to hold, the hold's lifetime from the providers' timeouts, and refusals as
// responses in OpenAI's error shape.
#include "admit/admission.hpp"
#include "server/call_plan.hpp"
#include "server/services.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <variant>

namespace turnout::server {

// The worst-case cost of the plan: its primary and fallbacks.
admit::CallCost call_cost(const config::Config& config, const CallPlan& plan);

// How long the call may take at most: every candidate's attempts at its provider's
// timeout, the retry waits, and a margin for recording; a hold not settled by then is
// charged in full.
std::chrono::milliseconds hold_lifetime(const config::Config& config, const CallPlan& plan);

// Allow-lists and the budget hold for a call on a virtual key, off the event loop.
boost::asio::awaitable<std::variant<admit::Admitted, admit::Refusal>> admit_call(Services& services,
                                                                                 const config::Config& config,
                                                                                 const admit::KeyGrant& grant,
                                                                                 const CallPlan& plan);

HttpResponse refusal_response(const admit::Refusal& refusal, unsigned version);

}  // namespace turnout::server
