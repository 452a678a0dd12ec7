#include "common/io_deadline.hpp"

#include <boost/asio/steady_timer.hpp>

namespace turnout {

struct IoDeadline::State : std::enable_shared_from_this<State> {
  explicit State(boost::beast::tcp_stream& s) : stream(&s), timer(s.get_executor()) {}

  boost::beast::tcp_stream* stream;  // null once the owner is gone
  boost::asio::steady_timer timer;
  bool timer_pending = false;
  Clock::time_point timer_at{};
  bool active = false;  // an operation is in progress
  Clock::time_point deadline{};
  bool expired = false;

  void arm(Clock::time_point at) {
    timer_pending = true;
    timer_at = at;
    timer.expires_at(at);  // cancels a pending wait, whose handler then does nothing
    timer.async_wait([self = shared_from_this(), at](const boost::system::error_code& error) {
      if (error || !self->stream || self->timer_at != at) return;
      self->timer_pending = false;
      self->fired();
    });
  }

  void fired() {
    if (!active) return;  // nothing to watch; the next begin() arms again
    if (Clock::now() >= deadline) {
      expired = true;
      boost::system::error_code ignored;
      stream->socket().close(ignored);
      return;
    }
    arm(deadline);  // the operation's deadline moved on since the timer was armed
  }
};

IoDeadline::IoDeadline(boost::beast::tcp_stream& stream) : state_(std::make_shared<State>(stream)) {}

IoDeadline::~IoDeadline() {
  state_->stream = nullptr;
  if (state_->timer_pending) state_->timer.cancel();
}

void IoDeadline::begin(Clock::time_point deadline) {
  State& state = *state_;
  state.active = true;
  state.expired = false;  // expired() speaks of the latest operation only
  state.deadline = deadline;
  if (deadline == Clock::time_point::max()) return;  // no limit: nothing to arm
  // A pending timer that fires no later than the deadline will re-arm for it then.
  if (!state.timer_pending || state.timer_at > deadline) state.arm(deadline);
}

void IoDeadline::end() { state_->active = false; }

bool IoDeadline::expired() const { return state_->expired; }

}  // namespace turnout
