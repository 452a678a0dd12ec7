#include "upstream/failure.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <fmt/format.h>

namespace turnout::upstream::detail {
namespace {

namespace http = boost::beast::http;
using boost::system::error_code;

std::string describe_limit(std::chrono::steady_clock::duration limit) {
  return fmt::format("{:g} s", std::chrono::duration<double>(limit).count());
}

bool is_connection_loss(const error_code& error) {
  return error == http::error::end_of_stream || error == http::error::partial_message ||
         error == boost::asio::error::eof || error == boost::asio::error::connection_reset ||
         error == boost::asio::error::connection_aborted || error == boost::asio::error::broken_pipe ||
         error == boost::asio::ssl::error::stream_truncated;
}

Failure timeout_failure(Phase phase, std::string_view where, std::chrono::steady_clock::duration limit) {
  switch (phase) {
    case Phase::resolve:
    case Phase::connect:
    case Phase::handshake:
      return {FailureKind::timeout, fmt::format("connecting to {} timed out after {}", where, describe_limit(limit))};
    case Phase::write:
    case Phase::response_head:
      return {FailureKind::timeout, fmt::format("{} did not respond within {}", where, describe_limit(limit))};
    case Phase::response_body:
      break;
  }
  return {FailureKind::timeout,
          fmt::format("the response from {} did not arrive within {}", where, describe_limit(limit))};
}

}  // namespace

Failure classify_error(const error_code& error, Phase phase, std::string_view host, std::string_view port,
                       std::chrono::steady_clock::duration limit) {
  const auto where = fmt::format("{}:{}", host, port);
  if (error == boost::beast::error::timeout) return timeout_failure(phase, where, limit);
  if (error == boost::asio::error::operation_aborted)
    return {FailureKind::reset, fmt::format("the call to {} was cancelled", where)};
  switch (phase) {
    case Phase::resolve:
      return {FailureKind::connect, fmt::format("cannot resolve {}: {}", host, error.message())};
    case Phase::connect:
      return {FailureKind::connect, fmt::format("cannot connect to {}: {}", where, error.message())};
    case Phase::handshake:
      return {FailureKind::connect, fmt::format("TLS handshake with {} failed: {}", where, error.message())};
    case Phase::write:
      return {FailureKind::reset,
              fmt::format("connection to {} lost while sending the request: {}", where, error.message())};
    case Phase::response_head:
    case Phase::response_body:
      break;
  }
  if (error == http::error::body_limit)
    return {FailureKind::too_large, fmt::format("the response body from {} is too large", where)};
  if (is_connection_loss(error))
    return {FailureKind::reset,
            fmt::format("{} closed the connection before the response was complete ({})", where, error.message())};
  if (error.category() == http::make_error_code(http::error::bad_version).category())  // parse errors
    return {FailureKind::malformed, fmt::format("malformed HTTP response from {}: {}", where, error.message())};
  return {FailureKind::reset, fmt::format("connection to {} failed mid-response: {}", where, error.message())};
}

bool is_stale_connection_error(const error_code& error, Phase phase, bool response_bytes_received) {
  if (error == boost::beast::error::timeout || error == boost::asio::error::operation_aborted) return false;
  if (phase == Phase::write) return true;
  return phase == Phase::response_head && !response_bytes_received && is_connection_loss(error);
}

bool is_stale_connection_answer(unsigned status, bool keeps_connection_alive,
                                std::chrono::steady_clock::duration head_after_write) {
  return status == 408 && !keeps_connection_alive && head_after_write <= kStaleAnswerWindow;
}

}  // namespace turnout::upstream::detail
