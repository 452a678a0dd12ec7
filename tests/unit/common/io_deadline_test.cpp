// IoDeadline (common/io_deadline.hpp): an operation stuck past its deadline is cut; a run
// of operations each within its own deadline is never cut, however long the whole run; a
// deadline earlier than the pending timer's still holds, and a later one is re-armed for.
#include "common/io_deadline.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

class IoDeadlineTest : public ::testing::Test {
 protected:
  IoDeadlineTest() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), writer_(io_) {
    writer_.socket().connect(acceptor_.local_endpoint());
    reader_ = acceptor_.accept();
  }

  // Runs `task` to completion.
  void run(asio::awaitable<void> task) {
    bool done = false;
    asio::co_spawn(io_, std::move(task), [&](std::exception_ptr error) {
      done = true;
      if (error) std::rethrow_exception(error);
    });
    io_.run_for(std::chrono::seconds(20));
    ASSERT_TRUE(done);
  }

  // A one-byte write under a deadline 100 ms away, done well within it: the deadline's
  // timer is left pending for that near expiry.
  asio::awaitable<void> write_within_near_deadline(turnout::IoDeadline& deadline) {
    deadline.begin(Clock::now() + milliseconds(100));
    auto [error, written] = co_await asio::async_write(writer_, asio::buffer("x", 1), use_tuple);
    deadline.end();
    EXPECT_FALSE(error);
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  boost::beast::tcp_stream writer_;
  tcp::socket reader_{io_};
};

// The peer reads nothing: the write fills the socket buffers and stalls until the limit.
TEST_F(IoDeadlineTest, StalledWriteIsCutAtTheLimit) {
  run([&]() -> asio::awaitable<void> {
    turnout::IoDeadline deadline(writer_);
    const auto limit = milliseconds(200);
    const std::string block(64u << 20, 'x');
    const auto started = Clock::now();
    deadline.begin(Clock::now() + limit);
    auto [error, written] = co_await asio::async_write(writer_, asio::buffer(block), use_tuple);
    deadline.end();
    const auto took = Clock::now() - started;
    EXPECT_TRUE(error);
    EXPECT_LT(written, block.size());
    EXPECT_TRUE(deadline.expired());
    EXPECT_GE(took, milliseconds(190));
    EXPECT_LT(took, milliseconds(2000));
  }());
}

// Five writes 150 ms apart under a 200 ms limit: 600 ms in all, each write quick.
TEST_F(IoDeadlineTest, WritesEachWithinTheLimitAreNeverCut) {
  run([&]() -> asio::awaitable<void> {
    turnout::IoDeadline deadline(writer_);
    const auto limit = milliseconds(200);
    asio::steady_timer pause(io_);
    for (int i = 0; i < 5; ++i) {
      deadline.begin(Clock::now() + limit);
      auto [error, written] = co_await asio::async_write(writer_, asio::buffer("event\n", 6), use_tuple);
      deadline.end();
      EXPECT_FALSE(error) << error.message();
      pause.expires_after(milliseconds(150));
      co_await pause.async_wait(use_tuple);
    }
    EXPECT_FALSE(deadline.expired());
    EXPECT_TRUE(writer_.socket().is_open());
  }());
}

// The timer is pending for a far deadline when a write with a near one stalls.
TEST_F(IoDeadlineTest, EarlierDeadlineThanThePendingTimerHolds) {
  run([&]() -> asio::awaitable<void> {
    turnout::IoDeadline deadline(writer_);
    deadline.begin(Clock::now() + std::chrono::seconds(30));
    auto [first_error, first_written] = co_await asio::async_write(writer_, asio::buffer("x", 1), use_tuple);
    deadline.end();
    EXPECT_FALSE(first_error);
    const std::string block(64u << 20, 'x');
    const auto started = Clock::now();
    deadline.begin(started + milliseconds(150));
    auto [error, written] = co_await asio::async_write(writer_, asio::buffer(block), use_tuple);
    deadline.end();
    EXPECT_TRUE(error);
    EXPECT_TRUE(deadline.expired());
    EXPECT_LT(Clock::now() - started, milliseconds(2000));
  }());
}

// After a cut, the next operation starts with expired() false: a failure on the closed
// socket is then reported as what it is, not as a second timeout.
TEST_F(IoDeadlineTest, ExpiredIsClearedByTheNextBegin) {
  run([&]() -> asio::awaitable<void> {
    turnout::IoDeadline deadline(writer_);
    const std::string block(64u << 20, 'x');
    deadline.begin(Clock::now() + milliseconds(100));
    auto [error, written] = co_await asio::async_write(writer_, asio::buffer(block), use_tuple);
    deadline.end();
    EXPECT_TRUE(error);
    EXPECT_TRUE(deadline.expired());
    deadline.begin(Clock::now() + std::chrono::seconds(30));
    EXPECT_FALSE(deadline.expired());
    auto [later_error, later_written] = co_await asio::async_write(writer_, asio::buffer("x", 1), use_tuple);
    deadline.end();
    EXPECT_TRUE(later_error);
    EXPECT_FALSE(deadline.expired());
  }());
}

// The timer is pending for a first operation's near deadline when a read with a later one
// starts: when it fires, the read is still within its own deadline and the timer re-arms
// for it. The peer answers 250 ms in, after the first timer fired, before the read's 400 ms.
TEST_F(IoDeadlineTest, ReadPastThePendingTimerButWithinItsOwnDeadlineIsNotCut) {
  run([&]() -> asio::awaitable<void> {
    turnout::IoDeadline deadline(writer_);
    co_await write_within_near_deadline(deadline);
    asio::steady_timer answer(io_, milliseconds(250));
    answer.async_wait([&](const boost::system::error_code&) { asio::write(reader_, asio::buffer("y", 1)); });
    deadline.begin(Clock::now() + milliseconds(400));
    char byte = 0;
    auto [error, read] = co_await writer_.async_read_some(asio::buffer(&byte, 1), use_tuple);
    deadline.end();
    EXPECT_FALSE(error) << error.message();
    EXPECT_EQ(byte, 'y');
    EXPECT_FALSE(deadline.expired());
    EXPECT_TRUE(writer_.socket().is_open());
  }());
}

// The same, but the peer never answers: the read is cut at its own, later deadline, not at
// the first timer's.
TEST_F(IoDeadlineTest, StalledReadIsCutAtItsOwnLaterDeadline) {
  run([&]() -> asio::awaitable<void> {
    turnout::IoDeadline deadline(writer_);
    co_await write_within_near_deadline(deadline);
    const auto started = Clock::now();
    deadline.begin(started + milliseconds(400));
    char byte = 0;
    auto [error, read] = co_await writer_.async_read_some(asio::buffer(&byte, 1), use_tuple);
    deadline.end();
    const auto took = Clock::now() - started;
    EXPECT_TRUE(error);
    EXPECT_TRUE(deadline.expired());
    EXPECT_GE(took, milliseconds(390));
    EXPECT_LT(took, milliseconds(2000));
  }());
}

// Destroyed before its timer fires: the timer's wait ends without touching the stream.
TEST_F(IoDeadlineTest, DestroyedDeadlineLeavesTheSocketAlone) {
  {
    turnout::IoDeadline deadline(writer_);
    deadline.begin(Clock::now() + milliseconds(50));
  }
  io_.run_for(milliseconds(150));
  EXPECT_TRUE(writer_.socket().is_open());
}

}  // namespace
