#include "server/endpoints/stream_relay.hpp"

#include "metering/call_bill.hpp"
#include "server/endpoints/chat_call.hpp"
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

asio::awaitable<void> relay_stream(Services& services, Call& call, const CallPlan& plan, CallOutcome& outcome,
                                   ledger::CallRecord& rec, StreamDialect& dialect) {
  Exchange& ex = call.exchange;
  Connection& connection = call.connection;
  boost::beast::tcp_stream& client = connection.stream;
  upstream::ResponseStream& upstream = *outcome.stream;
  const routing::Candidate& served = *outcome.served;

  // The head carries everything known before the first byte.
  http::response<http::empty_body> head{http::status::ok, 11};
  head.set(http::field::content_type, "text/event-stream");
  head.set(http::field::cache_control, "no-cache");
  head.set("x-request-id", ex.request_id);
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

  std::string buffer = std::move(outcome.stream_prefix);
  std::string out;
  std::optional<double> ttft_ms;
  while (client_ok && !watch->client_gone) {
    std::size_t consumed = 0;
    for (;;) {
      const std::size_t end = sse_event_end(std::string_view(buffer).substr(consumed));
      if (end == std::string_view::npos) break;
      dialect.on_event(std::string_view(buffer).substr(consumed, end), out);
      consumed += end;
      if (dialect.finished() || dialect.error()) break;
    }
    buffer.erase(0, consumed);
    if (!out.empty()) {
      co_await write_raw(boost::beast::http::make_chunk(asio::buffer(out)));
      if (!ttft_ms) ttft_ms = ms_between(ex.start, Clock::now());
      out.clear();
    }
    if (dialect.finished() || dialect.error() || !client_ok) break;
    const auto waited = Clock::now();
    auto chunk = co_await upstream.next();
    ex.upstream += Clock::now() - waited;
    if (watch->client_gone) break;
    if (!chunk) {
      ApiError failure = failure_error(chunk.error());
      failure.code = chunk.error().kind == upstream::FailureKind::timeout ? "upstream_stream_timeout"
                                                                          : "upstream_stream_error";
      failure.message = "The upstream stream failed midway: " + chunk.error().message;
      dialect.fail(std::move(failure));
      break;
    }
    if (!chunk.value()) {
      dialect.fail(ApiError{502, "The upstream stream ended before its final event.", "upstream_error", "",
                            "upstream_stream_error"});
      break;
    }
    buffer.append(**chunk);
  }
  const bool client_gone = !client_ok || watch->client_gone;
  if (client_gone) upstream.cancel();

  metering::bill_record(rec, dialect.usage(served), served.rates, services.baseline_rates);
  rec.status = client_gone ? 499 : 200;
  rec.error_type = client_gone ? "client_closed" : dialect.error() ? dialect.error()->code : "";
  rec.ttft_ms = ttft_ms;
  rec.latency_ms = ms_between(ex.start, Clock::now());
  ex.stream_status = static_cast<unsigned>(rec.status);
  ex.prompt_tokens = rec.usage.prompt_tokens;
  ex.completion_tokens = rec.usage.completion_tokens;
  ex.cost = rec.cost;
  ex.error_type = rec.error_type;
  co_await record_durably(services, ex, rec);

  const bool failed = dialect.error().has_value();
  if (!client_gone) {
    const std::string tail = failed || dialect.finished() ? dialect.tail(rec.cost) : std::string();
    if (!tail.empty()) co_await write_raw(boost::beast::http::make_chunk(asio::buffer(tail)));
    co_await write_raw(boost::beast::http::make_chunk_last());
  }
  if (dialect.finished() && !failed && client_ok && !watch->client_gone) {
    // Only now read the end of the upstream body, so its connection can go back to the
    // pool: an upstream slow to end its body must not hold back the client's last event.
    auto rest = co_await upstream.next();
    (void)rest;
  }
  watch->upstream = nullptr;
  boost::system::error_code ignored;
  client.socket().cancel(ignored);  // ends the watcher's wait
  if (client_gone || watch->client_gone || failed) connection.close_after = true;
  outcome.stream.reset();
}

}  // namespace turnout::server::endpoints
