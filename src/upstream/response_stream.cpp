// The body of an upstream response, read piece by piece under the idle and total
// deadlines and the size limit; a completed keep-alive connection goes back to the pool.
#include "upstream/exchange.hpp"

#include <boost/beast/http/read.hpp>
#include <fmt/format.h>

#include <algorithm>

namespace turnout::upstream {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using detail::Clock;
using detail::deadline_after;
using detail::nothrow_awaitable;
using detail::Phase;

ResponseStream::ResponseStream(std::unique_ptr<State> state) : state_(std::move(state)) {}
ResponseStream::ResponseStream(ResponseStream&&) noexcept = default;
ResponseStream& ResponseStream::operator=(ResponseStream&&) noexcept = default;
ResponseStream::~ResponseStream() = default;

unsigned ResponseStream::status() const { return state_->status; }
const std::string& ResponseStream::content_type() const { return state_->content_type; }
const std::optional<std::string>& ResponseStream::retry_after() const { return state_->retry_after; }

void ResponseStream::note_progress() {
  if (state_) state_->idle_since = Clock::now();
}

void ResponseStream::cancel() {
  if (!state_ || state_->finished()) return;
  state_->cancelled = true;
  // Closing (not destroying) the connection: a suspended next() still refers to it.
  state_->connection->close();
}

asio::awaitable<Result<std::optional<std::string_view>, Failure>> ResponseStream::next() {
  using Piece = std::optional<std::string_view>;
  State& state = *state_;
  if (state.failure) co_return *state.failure;
  if (state.cancelled) co_return state.fail({FailureKind::reset, "the upstream call was cancelled"});
  if (state.finished()) co_return Piece{};

  auto& parser = *state.parser;
  for (;;) {
    if (parser.is_done()) {
      state.complete();
      co_return Piece{};
    }
    auto& body = parser.get().body();
    body.data = state.chunk.data();
    body.size = state.chunk.size();

    // Checked here, not only by the socket's timer: a read that finds bytes waiting
    // completes at once, so an upstream that never stops sending would never time out.
    const auto now = Clock::now();
    const auto idle_deadline = deadline_after(state.idle_since, state.idle_timeout);
    const bool idle_limit_binds = idle_deadline < state.total_deadline;
    if (now >= std::min(idle_deadline, state.total_deadline)) {
      co_return state.fail(idle_limit_binds ? state.idle_timeout_failure()
                                            : detail::classify_error(boost::beast::error::timeout, Phase::response_body,
                                                                     state.upstream().host, state.upstream().port,
                                                                     state.total_limit));
    }
    state.connection->deadline().begin(std::min(idle_deadline, state.total_deadline));
    auto [read_error, bytes_read] = co_await state.connection->visit([&](auto& stream) {
      return http::async_read_some(stream, state.connection->buffer(), parser, nothrow_awaitable);
    });
    auto error = detail::end_under_deadline(*state.connection, read_error);
    if (error == http::error::need_buffer) error = {};  // our chunk buffer is full: deliver it
    if (state.cancelled) co_return state.fail({FailureKind::reset, "the upstream call was cancelled"});
    if (error == boost::beast::error::timeout && idle_limit_binds) co_return state.fail(state.idle_timeout_failure());
    if (error)
      co_return state.fail(detail::classify_error(error, Phase::response_body, state.upstream().host,
                                                   state.upstream().port, state.total_limit));

    const std::size_t produced = state.chunk.size() - body.size;
    state.body_bytes += produced;
    if (state.body_bytes > state.max_body_bytes) co_return state.fail(state.too_large());
    if (produced > 0) co_return Piece{std::string_view(state.chunk.data(), produced)};
  }
}

asio::awaitable<Result<std::string, Failure>> ResponseStream::read_rest() {
  std::string body;
  for (;;) {
    auto piece = co_await next();
    if (!piece) co_return piece.error();
    if (!*piece) co_return body;  // next() holds the body to max_response_bytes
    body.append(**piece);
  }
}

}  // namespace turnout::upstream
