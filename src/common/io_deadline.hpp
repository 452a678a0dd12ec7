#pragma once
// A deadline for the I/O operations of one connection without a timer operation per I/O
// operation (issue 16). beast::tcp_stream arms its timer when each operation starts and
// cancels it when it ends: two timer-queue operations, often a timerfd_settime, and a
// cancelled-wait handler per read or write, which a relayed stream pays on every event.
// Here begin() and end() only note the deadline; one timer, armed when none is pending
// (or when a deadline comes earlier than the pending one), looks at the operation in
// progress when it fires. An operation still running at its deadline has its socket
// closed, which ends it with an error, as Beast's timeout does; expired() then says why.
// nginx's send_timeout and proxy_read_timeout work this way. Single-threaded: use it on
// the stream's executor.
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>
#include <memory>

namespace turnout {

class IoDeadline {
 public:
  using Clock = std::chrono::steady_clock;

  // `stream` must outlive this object (or the call to detach()); its own expiry should be
  // "never" while this one is used.
  explicit IoDeadline(boost::beast::tcp_stream& stream);
  ~IoDeadline();
  IoDeadline(const IoDeadline&) = delete;
  IoDeadline& operator=(const IoDeadline&) = delete;

  // An operation starts that must end by `deadline`; end() when it has.
  void begin(Clock::time_point deadline);
  void end();
  // Whether the socket was closed because the latest operation (since begin()) passed its
  // deadline; a later operation on the closed socket fails for that, not for a timeout.
  bool expired() const;

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the timer's pending wait
};

}  // namespace turnout
