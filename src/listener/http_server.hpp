#pragma once
// The HTTP/1.1 front: one acceptor, N event-loop threads (one io_context each); every
// connection is a coroutine that lives on one thread for its whole life, so per-thread
// state (upstream pool, parser buffers) needs no locks. Keep-alive, a body limit that
// holds for chunked bodies too, read/idle timeouts, and a graceful drain on shutdown:
// the drain ends when the last in-flight request finishes (no polling) or at the grace
// deadline, whichever comes first. At the deadline every request still in flight is
// cancelled (ShutdownCancellation below), and its handler gets a bounded time to give the
// client a terminal answer and record the call before the loops stop.
#include "listener/acceptor.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace turnout::listener {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
// A response: Beast's message, plus header lines the gateway wrote as text (its per-call
// x-turnout-* and x-request-id headers, with common/header_text.hpp's append_header_line),
// sent after Beast's fields. Text rather than fields: a Beast field is a heap node each, and
// these are set on every call (issue 16). No field is both set() and in raw_fields.
struct HttpResponse : http::response<http::string_body> {
  using Message = http::response<http::string_body>;
  using Message::Message;
  std::string raw_fields;  // "name: value\r\n" lines
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8000;
  unsigned threads = 1;
  std::uint64_t max_body_bytes = 16777216;
  std::chrono::milliseconds read_timeout{30000};
  std::chrono::milliseconds idle_timeout{75000};
  std::uint64_t max_connections = 10000;  // open client connections; more wait in the backlog
  // After refusing a body (413), how long and how much of the rest of it is read and
  // dropped before closing, so that the client, still writing, reads the 413 instead of a
  // reset (nginx's lingering_close).
  std::chrono::milliseconds linger_time{5000};
  std::uint64_t linger_bytes = 64ull << 20;
  // After the shutdown grace: how long cancelled handlers get to answer and record.
  std::chrono::milliseconds cancel_wait{5000};
};

// The end of the shutdown grace as one connection's handler sees it. At the grace deadline
// the server sets `requested` and emits terminal cancellation on `signal`, on the
// connection's own thread. A handler binds signal.slot() to the waits that must end then
// (the upstream call; its own writes to the client and its ledger commit stay unbound, so
// that it can still answer and record), checks `requested` before starting a new wait, and
// clears the slot before whatever it bound goes away.
struct ShutdownCancellation {
  boost::asio::cancellation_signal signal;
  bool requested = false;
};

// What a handler sees of the connection beyond the request: the stream, for handlers that
// write their response themselves (server-sent events).
struct Connection {
  boost::beast::tcp_stream& stream;
  unsigned worker_index;
  bool keep_alive = true;    // whether the current request allows reuse (for streamed heads)
  bool close_after = false;  // set by a handler that left the connection unusable
  ShutdownCancellation shutdown;
  // The bytes the server parses the next request from, before it reads the socket again. A
  // handler that reads the client mid-response (the stream relay's disconnect watch) appends
  // what it reads here, so that a pipelined request keeps its place. Null in tests that
  // build a Connection by hand.
  boost::beast::flat_buffer* pending_input = nullptr;
};

// Responses for requests the server rejects before a handler runs (too large, malformed,
// timed out). The gateway supplies them so every body has the OpenAI error shape.
struct RejectionResponses {
  std::function<HttpResponse(unsigned version, std::uint64_t limit)> body_too_large;
  std::function<HttpResponse(unsigned version, const std::string& why)> bad_request;
  // A transfer coding other than chunked (gzip, deflate...): 501, which RFC 9112 asks for.
  std::function<HttpResponse(unsigned version, const std::string& coding)> unsupported_transfer_coding;
};

// Returns the response to send, or nullopt when the handler already wrote it itself.
using Handler = std::function<boost::asio::awaitable<std::optional<HttpResponse>>(HttpRequest&, Connection&)>;

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, Handler handler, RejectionResponses rejections);
  ~HttpServer();

  // Binds and listens; returns the bound port (useful with port 0). Errors are values.
  std::optional<std::string> listen(std::uint16_t& bound_port);

  // Runs the event loops on `threads` threads until stop() completes; blocks.
  void run();

  // Stops accepting and lets in-flight requests finish (up to `grace`); then cancels those
  // still running (ShutdownCancellation), waits up to `cancel_wait` for their handlers to
  // finish, and ends run(). Safe to call from any thread (e.g. a signal handler's io_context).
  void stop(std::chrono::milliseconds grace);

  void set_rejections(RejectionResponses rejections) { rejections_ = std::move(rejections); }
  std::size_t in_flight() const { return in_flight_.load(); }
  std::size_t open_connections() const { return open_connections_.load(); }
  unsigned threads() const { return static_cast<unsigned>(workers_.size()); }
  boost::asio::io_context& worker_context(unsigned index) { return *workers_[index]; }

 private:
  boost::asio::awaitable<void> session(boost::asio::ip::tcp::socket socket, unsigned worker);
  // Reads and drops what the client still sends (bounded by linger_time and linger_bytes)
  // after our half-close, then closes.
  boost::asio::awaitable<void> linger_close(boost::beast::tcp_stream& stream);
  // Counts a request in flight from its first header byte to its last response byte; the
  // last one to finish while draining ends the drain.
  class InFlight;
  // Keeps a connection in its worker's set for the session's life (that thread only).
  class Registration;
  // At the grace deadline (worker 0): cancels every connection's handler on its own thread,
  // then gives them `cancel_wait` to finish.
  void cancel_in_flight();
  void stop_loops();

  HttpServerOptions options_;
  Handler handler_;
  RejectionResponses rejections_;
  std::vector<std::unique_ptr<boost::asio::io_context>> workers_;
  std::unique_ptr<Acceptor> acceptor_;
  std::unique_ptr<boost::asio::steady_timer> drain_deadline_;  // worker 0's
  // Per worker, the connections it serves; each set is touched by its worker's thread only.
  std::vector<std::unordered_set<Connection*>> connections_;
  std::atomic<std::size_t> in_flight_{0};
  std::atomic<std::size_t> open_connections_{0};  // sessions running, for max_connections
  std::atomic<bool> draining_{false};
  unsigned next_worker_ = 0;
};

}  // namespace turnout::listener
