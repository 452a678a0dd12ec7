// The ledger hand-off of one event-loop thread (issue 16): the calls that finish in one
// turn of the loop reach the writer as one batch, and each waiting call is resumed with
// that batch's outcome; records whose flush never ran (a loop stopped first) are still
// handed to the ledger.
#include "server/ledger_outbox.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <optional>

namespace {

using namespace turnout;
namespace asio = boost::asio;

// A ledger that keeps each append_batch and answers at once with `outcome`.
class BatchKeepingLedger final : public ledger::Ledger {
 public:
  std::vector<std::vector<std::string>> batches;  // record ids, per append_batch
  int callbacks_with_target = 0;
  Result<void> outcome;

  void append(ledger::CallRecord record, DurableCallback on_durable) override {
    std::vector<ledger::CallRecord> one;
    one.push_back(std::move(record));
    append_batch(std::move(one), std::move(on_durable));
  }
  void append_batch(std::vector<ledger::CallRecord> records, DurableCallback on_durable) override {
    std::vector<std::string> ids;
    for (const auto& r : records) ids.push_back(r.id);
    batches.push_back(std::move(ids));
    if (on_durable) {
      ++callbacks_with_target;
      on_durable(outcome);
    }
  }
  Result<ledger::StatsReport> stats(const ledger::StatsQuery&) override { return ledger::StatsReport{}; }
  Result<ledger::SeriesReport> series(const ledger::SeriesQuery& query) override {
    return ledger::SeriesReport{query, {}};
  }
  ledger::LedgerHealth health() const override { return {}; }
  const std::string& installation_secret() const override { return secret_; }
  void close() override {}

 private:
  std::string secret_ = "secret";
};

ledger::CallRecord record_with_id(std::string id) {
  ledger::CallRecord r;
  r.id = std::move(id);
  return r;
}

// Spawns one coroutine per id that appends its record and keeps the outcome.
void spawn_appends(asio::io_context& io, server::LedgerOutbox& outbox, const std::vector<std::string>& ids,
                   std::vector<std::optional<bool>>& outcomes) {
  outcomes.assign(ids.size(), std::nullopt);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    asio::co_spawn(
        io,
        [&outbox, &outcomes, i, id = ids[i]]() -> asio::awaitable<void> {
          const Result<void> durable = co_await outbox.append(record_with_id(id));
          outcomes[i] = bool(durable);
        },
        asio::detached);
  }
}

TEST(LedgerOutbox, CallsFinishingInOneTurnReachTheWriterAsOneBatch) {
  asio::io_context io;
  BatchKeepingLedger ledger;
  server::LedgerOutbox outbox(io.get_executor(), ledger);
  std::vector<std::optional<bool>> outcomes;
  spawn_appends(io, outbox, {"a", "b", "c"}, outcomes);
  io.run();

  ASSERT_EQ(ledger.batches.size(), 1u);
  EXPECT_EQ(ledger.batches[0], (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(ledger.callbacks_with_target, 1);
  for (const auto& outcome : outcomes) EXPECT_EQ(outcome, std::optional<bool>(true));
}

TEST(LedgerOutbox, EachWaitingCallHearsTheBatchFailure) {
  asio::io_context io;
  BatchKeepingLedger ledger;
  ledger.outcome = make_error("database away, no spool");
  server::LedgerOutbox outbox(io.get_executor(), ledger);
  std::vector<std::optional<bool>> outcomes;
  spawn_appends(io, outbox, {"a", "b"}, outcomes);
  io.run();
  for (const auto& outcome : outcomes) EXPECT_EQ(outcome, std::optional<bool>(false));
}

TEST(LedgerOutbox, ALaterTurnIsALaterBatch) {
  asio::io_context io;
  BatchKeepingLedger ledger;
  server::LedgerOutbox outbox(io.get_executor(), ledger);
  std::vector<std::optional<bool>> first, second;
  spawn_appends(io, outbox, {"a"}, first);
  io.run();
  io.restart();
  spawn_appends(io, outbox, {"b", "c"}, second);
  io.run();
  ASSERT_EQ(ledger.batches.size(), 2u);
  EXPECT_EQ(ledger.batches[1], (std::vector<std::string>{"b", "c"}));
}

TEST(LedgerOutbox, RecordsWhoseFlushNeverRanAreHandedOver) {
  asio::io_context io;
  BatchKeepingLedger ledger;
  std::vector<std::optional<bool>> outcomes;
  server::LedgerOutbox outbox(io.get_executor(), ledger);
  spawn_appends(io, outbox, {"a", "b"}, outcomes);
  // Run the two coroutines up to their append, not the flush queued behind them.
  ASSERT_EQ(io.poll_one(), 1u);
  ASSERT_EQ(io.poll_one(), 1u);
  EXPECT_TRUE(ledger.batches.empty());
  outbox.hand_over_held();  // the loop stopped here
  ASSERT_EQ(ledger.batches.size(), 1u);
  EXPECT_EQ(ledger.batches[0], (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ledger.callbacks_with_target, 0) << "nobody is left to resume";
  io.run();  // the flush finds nothing left to send
  EXPECT_EQ(ledger.batches.size(), 1u);
}

}  // namespace
