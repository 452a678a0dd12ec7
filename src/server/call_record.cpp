#include "server/call_record.hpp"

namespace turnout::server {

ledger::CallRecord start_record(const Services& services, const Exchange& ex, const CallPlan& plan,
                                const CallOutcome& outcome, double arrived_unix, std::string_view endpoint) {
  const routing::Candidate& served = *outcome.served;
  ledger::CallRecord rec;
  rec.id = ex.request_id;
  rec.timestamp = arrived_unix;
  rec.instance_id = services.options.instance_id;
  rec.client_key_id = ex.key_id;
  rec.endpoint = endpoint;
  rec.requested_model = plan.requested_model;
  rec.model = served.model;
  rec.route = outcome.route;
  rec.counted_prompt_tokens = served.prompt_tokens;
  rec.count_estimated = plan.count_estimated;
  rec.count_partial = plan.count_partial;
  rec.attempts = static_cast<int>(ex.attempts);
  rec.stream = plan.stream;
  rec.hold_id = ex.hold_id;
  return rec;
}

std::uint64_t served_prompt_tokens(Call& call, const CallPlan& plan, const routing::Candidate& served,
                                   ledger::CallRecord& rec) {
  if (!rec.counted_prompt_tokens && plan.operation == kChatOperation) {
    // The parser's views of the first parse are gone (other calls on this thread used
    // it while this one waited), so the body is parsed again.
    rec.counted_prompt_tokens =
        count_chat_prompt_again(call.worker.request_parser, call.request.body(), plan, served.encoding);
  }
  // Always there by now: every other endpoint plans with count_every_model, and the body
  // parsed once parses again.
  return rec.counted_prompt_tokens.value_or(0);
}

void finish_metrics(Services& services, const Exchange& ex, const CallOutcome& outcome, unsigned status,
                    std::string_view endpoint) {
  RequestObservation obs;
  obs.endpoint = endpoint;
  obs.model = ex.model;
  obs.route = ex.route;
  obs.status = status;
  obs.duration_s = std::chrono::duration<double>(Clock::now() - ex.start).count();
  obs.upstream_s = std::chrono::duration<double>(ex.upstream).count();
  obs.overhead_s = static_cast<double>(overhead_us(ex)) / 1e6;
  obs.prompt_tokens = ex.prompt_tokens;
  obs.completion_tokens = ex.completion_tokens;
  obs.cost = ex.cost;
  obs.retries = outcome.retries;
  obs.fallbacks = outcome.fallbacks;
  services.metrics.record_request(obs);
}

}  // namespace turnout::server
