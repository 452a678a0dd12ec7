#include "server/recording.hpp"

#include "common/json_text.hpp"

#include <spdlog/logger.h>

namespace turnout::server {
namespace asio = boost::asio;

asio::awaitable<bool> record_durably(Services& services, WorkerState& worker, Exchange& exchange,
                                     ledger::CallRecord record) {
  const std::size_t span = exchange.trace.start("ledger commit", tracing::SpanKind::internal);
  // Lease mode: the call's worst case leaves its lease's in-flight part, its actual cost
  // stays reserved there until the writer settles the record (or the lease expires). Told
  // before the hand-off: a coroutine destroyed at a forced shutdown never resumes, while
  // the writer still commits its record at the actual cost.
  if (services.options.admission != nullptr && !record.hold_id.empty())
    services.options.admission->call_recorded(record.hold_id, record.cost ? record.cost->pico : 0);
  const auto durable = co_await worker.ledger_outbox.append(std::move(record));
  exchange.trace.set(span, "turnout.durable", bool(durable));
  if (!durable) exchange.trace.fail(span, "the record could not be made durable");
  exchange.trace.end(span);
  if (!durable && services.options.access_log) {
    std::string line = R"({"event":"ledger_error","request_id":)";
    append_json_string(line, exchange.request_id);
    line += R"(,"message":)";
    append_json_string(line, durable.error().message);  // database errors quote things
    line.push_back('}');
    services.options.access_log->error(line);
  }
  co_return bool(durable);
}

ApiError not_recorded_error() {
  return ApiError{503, "The gateway could not record this call durably, so its answer is withheld; retry later.",
                  "server_error", "", "ledger_unavailable"};
}

}  // namespace turnout::server
