#include "server/recording.hpp"

#include "common/json_text.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/logger.h>

namespace turnout::server {
namespace asio = boost::asio;

namespace {

asio::awaitable<Result<void>> append(ledger::Ledger& ledger, ledger::CallRecord rec) {
  // Resumes this coroutine on its own thread once the writer thread reports the commit.
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Result<void>)>(
      [&ledger, &rec](auto handler) {
        using Handler = decltype(handler);
        auto shared = std::make_shared<Handler>(std::move(handler));
        ledger.append(std::move(rec), [shared](Result<void> result) {
          auto executor = asio::get_associated_executor(*shared);
          asio::post(executor, [shared, result = std::move(result)]() mutable { (*shared)(std::move(result)); });
        });
      },
      asio::use_awaitable);
}

}  // namespace

asio::awaitable<bool> record_durably(Services& services, Exchange& exchange, ledger::CallRecord record) {
  const std::size_t span = exchange.trace.start("ledger commit", tracing::SpanKind::internal);
  const auto durable = co_await append(services.ledger, std::move(record));
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
