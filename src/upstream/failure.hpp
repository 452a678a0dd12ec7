#pragma once
// Internal to the upstream client: turning socket, TLS and HTTP errors into Failures whose
// messages name the upstream and the phase, never a header or key.
#include "upstream/client.hpp"

#include <boost/system/error_code.hpp>

#include <chrono>
#include <string_view>

namespace turnout::upstream::detail {

// Where in an attempt an error happened; it decides the FailureKind and the wording.
enum class Phase {
  resolve,
  connect,
  handshake,
  write,
  response_head,
  response_body,
};

// `limit` is the time limit that applies to the phase, quoted when `error` is a timeout.
// Messages name the upstream as host:port only.
Failure classify_error(const boost::system::error_code& error, Phase phase, std::string_view host,
                       std::string_view port, std::chrono::steady_clock::duration limit);
inline Failure classify_error(const boost::system::error_code& error, Phase phase, const Endpoint& endpoint,
                              std::chrono::steady_clock::duration limit) {
  return classify_error(error, phase, endpoint.host, endpoint.port, limit);
}

// The keep-alive race: a reused connection that the peer had already closed fails the
// write, or yields EOF/reset before a single response byte; the request is then sent again
// on a fresh connection. After a failed write nothing reached the server's application.
// After a complete write it usually did not either (the server had closed first), but an
// upstream that processed the request and then dropped the connection gets it twice; no
// client can tell the two apart, and browsers and HTTP libraries resend too.
bool is_stale_connection_error(const boost::system::error_code& error, Phase phase,
                               bool response_bytes_received);

// The other face of the race: a server whose keep-alive timeout ended sends `408 Request
// Timeout` on the idle connection and closes it. Those bytes wait in the kernel (the pool
// does not probe a connection returned under a second ago) and are read as the answer to
// the next request, which the server never processed. So a 408 read from a reused
// connection means "resend on a fresh one", as Chromium does; on a fresh connection it is
// the server's answer. Some upstreams (OpenRouter, LiteLLM) also answer 408 to a request
// they ran, and billed, for too long: only a 408 that closes the connection (RFC 9110
// §15.5.9) and whose head was there within kStaleAnswerWindow of the request's last byte
// written can be the idle one; any other is the answer, and resending would run the call
// twice.
inline constexpr std::chrono::milliseconds kStaleAnswerWindow{50};
bool is_stale_connection_answer(unsigned status, bool keeps_connection_alive,
                                std::chrono::steady_clock::duration head_after_write);

}  // namespace turnout::upstream::detail
