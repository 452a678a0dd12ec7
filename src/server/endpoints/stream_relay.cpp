#include "server/endpoints/stream_relay.hpp"

#include "common/header_text.hpp"
#include "common/io_deadline.hpp"
#include "listener/response_head.hpp"
#include "metering/call_bill.hpp"
#include "server/call_record.hpp"
#include "server/endpoints/chat_call.hpp"
#include "server/recording.hpp"
#include "server/sse.hpp"
#include "server/upstream_errors.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_cat.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <fmt/format.h>

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

// At most this much of a client's next request is taken in while its stream runs (the
// request head limit). Past it the watch stops and the rest waits in the socket.
constexpr std::size_t kPipelinedBytesLimit = 64 * 1024;

// Waits for the socket to become readable. Readable with nothing to read is the client's FIN
// (or an error): it has gone. Bytes waiting are its next request (a keep-alive client that
// pipelines): they are moved, in order, to the end of the connection's pending input, where
// the server parses the next request from, and the watch goes on, so that a client that
// sends its next request and then leaves is still noticed. The read is a synchronous one of
// bytes known to be there, done only on that path: a plain stream costs no extra syscall.
asio::awaitable<void> watch_client(boost::beast::tcp_stream& client, boost::beast::flat_buffer* pending_input,
                                   std::shared_ptr<ClientWatch> watch) {
  for (;;) {
    auto [ec] = co_await client.socket().async_wait(asio::socket_base::wait_read, use_tuple);
    if (watch->upstream == nullptr) co_return;  // the relay finished and cancelled this wait
    boost::system::error_code read_ec;
    const std::size_t waiting = ec ? 0 : client.socket().available(read_ec);
    if (waiting == 0 || read_ec) break;
    // Without a buffer to keep them, or past the bound, the bytes stay in the socket, and
    // the watch ends: waiting again would wake at once for those same bytes.
    if (pending_input == nullptr || pending_input->size() + waiting > kPipelinedBytesLimit) co_return;
    const std::size_t taken = client.socket().read_some(pending_input->prepare(waiting), read_ec);
    if (read_ec) break;
    pending_input->commit(taken);
  }
  watch->client_gone = true;
  watch->upstream->cancel();
}

ApiError midway_failure(const upstream::Failure& failure) {
  ApiError error = failure_error(failure);
  error.code = failure.kind == upstream::FailureKind::timeout     ? "upstream_stream_timeout"
               : failure.kind == upstream::FailureKind::too_large ? "upstream_response_too_large"
                                                                  : "upstream_stream_error";
  error.message = "The upstream stream failed midway: " + failure.message;
  return error;
}

}  // namespace

asio::awaitable<void> relay_stream(Services& services, Call& call, const CallPlan& plan, CallOutcome& outcome,
                                   ledger::CallRecord& rec, StreamDialect& dialect) {
  Exchange& ex = call.exchange;
  Connection& connection = call.connection;
  boost::beast::tcp_stream& client = connection.stream;
  upstream::ResponseStream& upstream = *outcome.stream;
  const routing::Candidate& served = *outcome.served;

  // The head carries everything known before the first byte. It is written as text and goes
  // out in one write with the first events, which the upstream attempt has already read (one
  // send instead of two per streamed call).
  http::response<http::empty_body> head{http::status::ok, 11};
  head.set(http::field::content_type, "text/event-stream");
  head.set(http::field::cache_control, "no-cache");
  for (const auto& [name, value] : ex.limit_headers) head.set(name, value);
  head.keep_alive(connection.keep_alive);
  head.chunked(true);
  std::string call_fields;
  call_fields.reserve(metering::kCallFieldsCapacity);  // one allocation, not one per doubling
  append_header_line(call_fields, "x-request-id", ex.request_id);
  metering::append_call_headers(call_fields, call_headers(plan, outcome, ex, rec.counted_prompt_tokens, std::nullopt));

  auto watch = std::make_shared<ClientWatch>();
  watch->upstream = &upstream;
  bool client_ok = true;
  // Each write must finish within kClientWriteTimeout, watched by one timer for the whole
  // stream rather than a timer armed and cancelled per write.
  IoDeadline write_deadline(client);
  auto write_raw = [&](auto buffers) -> asio::awaitable<void> {
    if (!client_ok) co_return;
    write_deadline.begin(Clock::now() + kClientWriteTimeout);
    auto [ec, n] = co_await asio::async_write(client, buffers, use_tuple);
    (void)n;
    write_deadline.end();
    client_ok = !ec;
  };
  // Until the first write, the head waits to go out with the first events.
  std::string unsent_head;
  listener::append_response_head(unsent_head, head.base(), call_fields);
  auto write_events = [&](const std::string& events_text) -> asio::awaitable<void> {
    if (unsent_head.empty()) {
      co_await write_raw(boost::beast::http::make_chunk(asio::buffer(events_text)));
      co_return;
    }
    if (events_text.empty()) {
      co_await write_raw(asio::buffer(unsent_head));
    } else {
      co_await write_raw(boost::beast::buffers_cat(asio::buffer(unsent_head),
                                                   boost::beast::http::make_chunk(asio::buffer(events_text))));
    }
    unsent_head.clear();
    if (client_ok) asio::co_spawn(client.get_executor(), watch_client(client, connection.pending_input, watch), asio::detached);
  };

  SseFramer& events = outcome.stream_events;  // holds the first event(s) already read
  std::string out;
  std::optional<double> ttft_ms;
  auto over = [&] { return dialect.finished() || dialect.error().has_value(); };

  // The end of the shutdown grace cuts the relay: the upstream call is cancelled, the
  // record keeps what was streamed so far, and the client gets an error event.
  listener::ShutdownCancellation& shutdown = connection.shutdown;
  shutdown.signal.slot().assign([&upstream](asio::cancellation_type) { upstream.cancel(); });

  while (client_ok && !watch->client_gone) {
    while (auto event = events.next_event()) {
      upstream.note_progress();  // the idle timeout counts from the last complete event
      dialect.on_event(*event, out);
      if (over()) break;
    }
    if (!over() && events.oversized()) {
      dialect.fail(ApiError{502, fmt::format("The upstream sent a stream event larger than {} bytes.", kMaxSseEventBytes),
                            "upstream_error", "", "upstream_stream_error"});
    }
    if (!out.empty() || !unsent_head.empty()) {
      const bool had_events = !out.empty();
      co_await write_events(out);  // the head alone when the first read gave no event to send
      if (had_events && !ttft_ms) ttft_ms = ms_between(ex.start, Clock::now());
      out.clear();
    }
    if (over() || !client_ok) break;
    if (shutdown.requested) {
      dialect.fail(shutdown_error(true));
      break;
    }
    const auto waited = Clock::now();
    auto chunk = co_await upstream.next();
    ex.upstream += Clock::now() - waited;
    if (watch->client_gone) break;
    if (shutdown.requested) {
      dialect.fail(shutdown_error(true));
      break;
    }
    if (!chunk) {
      dialect.fail(midway_failure(chunk.error()));
      break;
    }
    if (!chunk.value()) {
      dialect.fail(ApiError{502, "The upstream stream ended before its final event.", "upstream_error", "",
                            "upstream_stream_error"});
      break;
    }
    events.append(**chunk);
  }
  const bool client_gone = !client_ok || watch->client_gone;
  if (client_gone || shutdown.requested) upstream.cancel();

  // The usage's fallback count runs after the stream, not before its first byte.
  const metering::PromptCount prompt_tokens = [&] { return served_prompt_tokens(call, plan, served, rec); };
  metering::bill_record(rec, dialect.usage(prompt_tokens), served.rates, call.settings.baseline_rates);
  rec.status = client_gone ? 499 : 200;
  rec.error_type = client_gone ? "client_closed" : dialect.error() ? dialect.error()->code : "";
  rec.ttft_ms = ttft_ms;
  rec.latency_ms = ms_between(ex.start, Clock::now());
  ex.stream_status = static_cast<unsigned>(rec.status);
  ex.prompt_tokens = rec.usage.prompt_tokens;
  ex.completion_tokens = rec.usage.completion_tokens;
  ex.cost = rec.cost;
  ex.error_type = rec.error_type;
  if (!co_await record_durably(services, call.worker, ex, rec)) {
    // The record is only in memory: the stream must not end as complete.
    dialect.fail(not_recorded_error());
    ex.error_type = "ledger_unavailable";
  }

  // The watch ends before the last write: a client that has read the end of its response
  // sends its next request at once, and a watcher still waiting would wake for it (an
  // epoll wake-up and an ioctl per streamed call, issue 16). What remains is bounded by
  // the write's own timeout and the upstream's idle timeout: a client that closes while
  // the upstream is slow to end its body holds the session until then (up to
  // stream_idle_timeout_s), though it has its whole answer and the record is written.
  watch->upstream = nullptr;
  boost::system::error_code ignored;
  client.socket().cancel(ignored);  // ends the watcher's wait

  const bool failed = dialect.error().has_value();
  if (!client_gone) {
    const std::string tail = failed || dialect.finished() ? dialect.tail(rec.cost) : std::string();
    // The last events and the end of the body in one send.
    if (!tail.empty()) {
      co_await write_raw(boost::beast::buffers_cat(boost::beast::http::make_chunk(asio::buffer(tail)),
                                                   boost::beast::http::make_chunk_last()));
    } else {
      co_await write_raw(boost::beast::http::make_chunk_last());
    }
  }
  if (dialect.finished() && !failed && client_ok && !watch->client_gone && !shutdown.requested) {
    // Only now read the end of the upstream body, so its connection can go back to the
    // pool: an upstream slow to end its body must not hold back the client's last event.
    auto rest = co_await upstream.next();
    (void)rest;
  }
  shutdown.signal.slot().clear();
  if (client_gone || watch->client_gone || failed) connection.close_after = true;
  outcome.stream.reset();
}

}  // namespace turnout::server::endpoints
