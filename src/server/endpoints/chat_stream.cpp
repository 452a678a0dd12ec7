// Streaming chat completions (docs/REFERENCE.md §2.3): see chat_call.hpp.
#include "metering/call_bill.hpp"
#include "server/endpoints/chat_call.hpp"
#include "server/openai_error.hpp"
#include "server/recording.hpp"
#include "server/sse.hpp"
#include "server/upstream_errors.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/format.h>
#include <simdjson.h>

namespace turnout::server::endpoints {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::seconds kClientWriteTimeout{30};

// Watches the client socket while the stream is relayed: a client that goes away cancels
// the upstream call at once instead of when the next write fails.
struct ClientWatch {
  upstream::ResponseStream* upstream = nullptr;  // null once the relay is over
  bool client_gone = false;
};

// Waits for the socket to become readable without reading, so that bytes a keep-alive
// client sends early (its next request) stay in the socket for the connection's next read.
// Readable with nothing to read is the client's FIN (or an error): it has gone.
asio::awaitable<void> watch_client(boost::beast::tcp_stream& client, std::shared_ptr<ClientWatch> watch) {
  auto [ec] = co_await client.socket().async_wait(asio::socket_base::wait_read, use_tuple);
  if (watch->upstream == nullptr) co_return;  // the relay finished and cancelled this wait
  boost::system::error_code available_ec;
  if (!ec && client.socket().available(available_ec) > 0 && !available_ec) co_return;  // data, not a close
  watch->client_gone = true;
  watch->upstream->cancel();
}

}  // namespace

asio::awaitable<void> relay_chat_stream(Services& services, Call& call, const CallPlan& plan, CallOutcome& outcome,
                                       ledger::CallRecord& rec) {
  Exchange& ex = call.exchange;
  Connection& connection = call.connection;
  WorkerState& worker = call.worker;
  boost::beast::tcp_stream& client = connection.stream;
  upstream::ResponseStream& upstream = *outcome.stream;
  const routing::Candidate& served = *outcome.served;

  // The head carries everything known before the first byte.
  http::response<http::empty_body> head{http::status::ok, 11};
  head.set(http::field::content_type, "text/event-stream");
  head.set(http::field::cache_control, "no-cache");
  head.set("x-request-id", ex.request_id);
  for (const auto& [name, value] : ex.limit_headers) head.set(name, value);
  metering::set_call_headers(head, call_headers(plan, outcome, ex, std::nullopt));
  head.keep_alive(connection.keep_alive);
  head.chunked(true);

  auto watch = std::make_shared<ClientWatch>();
  watch->upstream = &upstream;
  bool client_ok = true;
  auto write_raw = [&](auto buffers) -> asio::awaitable<void> {
    if (!client_ok) co_return;
    client.expires_after(kClientWriteTimeout);
    auto [ec, n] = co_await asio::async_write(client, buffers, use_tuple);
    (void)n;
    client.expires_never();
    client_ok = !ec;
  };
  {
    http::response_serializer<http::empty_body> serializer{head};
    client.expires_after(kClientWriteTimeout);
    auto [ec, n] = co_await http::async_write_header(client, serializer, use_tuple);
    (void)n;
    client.expires_never();
    client_ok = !ec;
  }
  if (client_ok) asio::co_spawn(client.get_executor(), watch_client(client, watch), asio::detached);

  metering::StreamUsage meter(served.encoding);
  SseFramer& events = outcome.stream_events;  // holds the first event(s) already read
  std::string out;
  std::string scratch;
  bool saw_done = false;
  bool error_forwarded = false;  // the upstream sent its own error event
  std::optional<ApiError> stream_error;
  std::optional<double> ttft_ms;

  // Handles one complete event: appends what the client should get to `out`.
  auto handle_event = [&](std::string_view event) {
    std::string_view data;
    if (!sse_event_data(event, scratch, data)) {
      out.append(event);  // comments and keep-alives pass through
      return;
    }
    if (data == "[DONE]") {
      saw_done = true;  // held back until the ledger has the call
      return;
    }
    auto parsed = worker.response_parser.parse(data.data(), data.size());
    if (parsed.error() || !parsed.value_unsafe().is_object()) {
      stream_error = ApiError{502, "The upstream sent a malformed stream event (not JSON).", "upstream_error", "",
                              "upstream_stream_error"};
      return;
    }
    const simdjson::dom::element root = parsed.value_unsafe();
    if (auto err = root["error"]; !err.error() && !err.value_unsafe().is_null()) {
      out.append(event);
      error_forwarded = true;
      stream_error = ApiError{502, "The upstream reported an error mid-stream.", "upstream_error", "",
                              "upstream_stream_error"};
      return;
    }
    meter.observe(root);
    auto usage = root["usage"];
    if (usage.error() || !usage.value_unsafe().is_object()) {
      out.append(event);
      return;
    }
    auto choices = root["choices"];
    const bool usage_only = !choices.error() && choices.value_unsafe().is_array() &&
                            choices.value_unsafe().get_array().value_unsafe().size() == 0;
    if (!usage_only) {
      out.append(event);
      return;
    }
    // The usage chunk: only for a client that asked for it, with the exact cost added.
    if (!plan.include_usage) return;
    std::string json(data);
    metering::add_gateway_fields(json, meter.reported() ? pricing::cost(served.rates, *meter.reported()) : std::nullopt,
                                 std::nullopt);
    out += "data: ";
    out += json;
    out += "\n\n";
  };

  // The end of the shutdown grace cuts the relay: the upstream call is cancelled, the
  // record keeps what was streamed so far, and the client gets an error event.
  listener::ShutdownCancellation& shutdown = connection.shutdown;
  shutdown.signal.slot().assign([&upstream](asio::cancellation_type) { upstream.cancel(); });

  while (client_ok && !watch->client_gone) {
    while (auto event = events.next_event()) {
      upstream.note_progress();  // the idle timeout counts from the last complete event
      handle_event(*event);
      if (saw_done || stream_error) break;
    }
    if (!saw_done && !stream_error && events.oversized()) {
      stream_error = ApiError{502, fmt::format("The upstream sent a stream event larger than {} bytes.", kMaxSseEventBytes),
                              "upstream_error", "", "upstream_stream_error"};
    }
    if (!out.empty()) {
      co_await write_raw(boost::beast::http::make_chunk(asio::buffer(out)));
      if (!ttft_ms) ttft_ms = ms_between(ex.start, Clock::now());
      out.clear();
    }
    if (saw_done || stream_error || !client_ok) break;
    if (shutdown.requested) {
      stream_error = shutdown_error(true);
      break;
    }
    const auto waited = Clock::now();
    auto chunk = co_await upstream.next();
    ex.upstream += Clock::now() - waited;
    if (watch->client_gone) break;
    if (shutdown.requested) {
      stream_error = shutdown_error(true);
      break;
    }
    if (!chunk) {
      const upstream::FailureKind kind = chunk.error().kind;
      stream_error = failure_error(chunk.error());
      stream_error->code = kind == upstream::FailureKind::timeout     ? "upstream_stream_timeout"
                           : kind == upstream::FailureKind::too_large ? "upstream_response_too_large"
                                                                      : "upstream_stream_error";
      stream_error->message = "The upstream stream failed midway: " + chunk.error().message;
      break;
    }
    if (!chunk.value()) {
      stream_error = ApiError{502, "The upstream stream ended before [DONE].", "upstream_error", "",
                              "upstream_stream_error"};
      break;
    }
    events.append(**chunk);
  }
  const bool client_gone = !client_ok || watch->client_gone;
  if (client_gone || shutdown.requested) upstream.cancel();

  metering::bill_record(rec, meter.finish(served.prompt_tokens), served.rates,
                        call.settings.baseline_rates);
  rec.status = client_gone ? 499 : 200;
  rec.error_type = client_gone ? "client_closed" : stream_error ? stream_error->code : "";
  rec.ttft_ms = ttft_ms;
  rec.latency_ms = ms_between(ex.start, Clock::now());
  ex.stream_status = static_cast<unsigned>(rec.status);
  ex.prompt_tokens = rec.usage.prompt_tokens;
  ex.completion_tokens = rec.usage.completion_tokens;
  ex.cost = rec.cost;
  ex.error_type = rec.error_type;
  if (!co_await record_durably(services, ex, rec)) {
    // The record is only in memory: the stream must not end as complete.
    stream_error = not_recorded_error();
    ex.error_type = "ledger_unavailable";
  }

  if (!client_gone) {
    std::string tail;
    if (stream_error && !error_forwarded) {
      tail = "data: " + error_body(*stream_error) + "\n\n";
    } else if (saw_done && !stream_error) {
      tail = "data: [DONE]\n\n";
    }
    if (!tail.empty()) co_await write_raw(boost::beast::http::make_chunk(asio::buffer(tail)));
    co_await write_raw(boost::beast::http::make_chunk_last());
  }
  if (saw_done && !stream_error && client_ok && !watch->client_gone && !shutdown.requested) {
    // Only now read the end of the upstream body, so its connection can go back to the
    // pool: an upstream slow to end its body must not hold back the client's [DONE].
    auto rest = co_await upstream.next();
    (void)rest;
  }
  shutdown.signal.slot().clear();
  watch->upstream = nullptr;
  boost::system::error_code ignored;
  client.socket().cancel(ignored);  // ends the watcher's wait
  if (client_gone || watch->client_gone || stream_error) connection.close_after = true;
  outcome.stream.reset();
}

}  // namespace turnout::server::endpoints
