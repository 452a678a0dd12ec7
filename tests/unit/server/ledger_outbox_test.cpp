// The ledger hand-off of one event-loop thread (issue 16): the calls that finish in one
// turn of the loop reach the writer as one batch, and each waiting call is resumed with
// that batch's outcome; records whose flush never ran (a loop stopped first) are still
// handed to the ledger. With a hand-off journal: the calls without a governance hold are
// resumed once their records are in the journal, before the writer's outcome; a call with
// a hold, and every call of a turn the journal cannot take, waits for the outcome.
#include "server/ledger_outbox.hpp"

#include "ledger/journal/journal.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <filesystem>
#include <optional>

namespace {

using namespace turnout;
namespace asio = boost::asio;

// The reads and upkeep no outbox test uses, answered empty.
class StandInLedger : public ledger::Ledger {
 public:
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

// A ledger that keeps each append_batch and answers at once with `outcome`.
class BatchKeepingLedger final : public StandInLedger {
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
};

ledger::CallRecord record_with_id(std::string id) {
  ledger::CallRecord r;
  r.id = std::move(id);
  if (r.id.starts_with("held")) r.hold_id = "hold-" + r.id;
  return r;
}

// A ledger that hands out a real journal (in a temporary directory) and keeps each
// append_keyed with its callback, answered only when the test says so.
class JournalingLedger final : public StandInLedger {
 public:
  explicit JournalingLedger(std::uint64_t journal_bytes) {
    std::string pattern = (std::filesystem::temp_directory_path() / "turnout-outbox-XXXXXX").string();
    dir_ = ::mkdtemp(pattern.data());
    auto opened = ledger::Journal::open((dir_ / "ledger.db").string(), journal_bytes);
    if (opened) journal_ = *opened;
  }
  ~JournalingLedger() override {
    journal_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  struct Batch {
    std::vector<ledger::KeyedRecord> records;
    std::uint64_t last_seq = 0;
    DurableCallback on_durable;
  };
  std::vector<Batch> batches;

  std::shared_ptr<ledger::Journal> open_journal() override { return journal_; }
  void append_keyed(std::vector<ledger::KeyedRecord> records, std::shared_ptr<ledger::Journal> journal,
                    std::uint64_t last_seq, DurableCallback on_durable) override {
    EXPECT_EQ(journal, journal_);
    batches.push_back(Batch{std::move(records), last_seq, std::move(on_durable)});
  }
  void append(ledger::CallRecord, DurableCallback) override { ADD_FAILURE() << "not through the journal"; }
  void append_batch(std::vector<ledger::CallRecord>, DurableCallback) override { ADD_FAILURE() << "not through the journal"; }

  std::vector<std::string> journaled_ids() const {
    std::vector<std::string> ids;
    const int fd = ::open(journal_->path().c_str(), O_RDONLY | O_CLOEXEC);
    auto records = ledger::read_journal(fd);
    ::close(fd);
    if (records) for (const auto& r : *records) ids.push_back(r.record.id);
    return ids;
  }

 private:
  std::filesystem::path dir_;
  std::shared_ptr<ledger::Journal> journal_;
};

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

// Runs what is ready: a call still waiting for the writer keeps the loop's work count up
// (co_spawn), so run() would not return.
void run_ready(asio::io_context& io) {
  io.restart();
  while (io.poll() > 0) {
  }
}

TEST(LedgerOutbox, CallsWithoutAHoldAreAnsweredOnceJournaledHeldOnesWaitForTheCommit) {
  asio::io_context io;
  JournalingLedger ledger(1 << 16);
  server::LedgerOutbox outbox(io.get_executor(), ledger);
  std::vector<std::optional<bool>> outcomes;
  spawn_appends(io, outbox, {"a", "held-b", "c"}, outcomes);
  run_ready(io);
  // a and c resumed (their records are in the journal); the held call waits for the writer.
  EXPECT_EQ(outcomes[0], std::optional<bool>(true));
  EXPECT_EQ(outcomes[1], std::nullopt);
  EXPECT_EQ(outcomes[2], std::optional<bool>(true));
  EXPECT_EQ(ledger.journaled_ids(), (std::vector<std::string>{"a", "c"})) << "the held record is not journaled";
  // One hand-off for the turn, every record keyed by the journal, the held one last.
  ASSERT_EQ(ledger.batches.size(), 1u);
  const auto& batch = ledger.batches[0];
  ASSERT_EQ(batch.records.size(), 3u);
  EXPECT_EQ(batch.records[2].record.id, "held-b");
  for (const auto& keyed : batch.records) EXPECT_FALSE(keyed.key.empty());
  EXPECT_EQ(batch.last_seq, 3u);
  ASSERT_TRUE(batch.on_durable);
  batch.on_durable(Result<void>());
  run_ready(io);
  EXPECT_EQ(outcomes[1], std::optional<bool>(true));
}

TEST(LedgerOutbox, ATurnTheJournalCannotTakeWaitsForTheCommit) {
  asio::io_context io;
  // Room for the segment headers and barely a frame: no record fits.
  JournalingLedger ledger(2 * (ledger::Journal::kSegmentHeaderBytes + ledger::Journal::kFrameHeaderBytes + 8));
  server::LedgerOutbox outbox(io.get_executor(), ledger);
  std::vector<std::optional<bool>> outcomes;
  spawn_appends(io, outbox, {"a", "b"}, outcomes);
  run_ready(io);
  EXPECT_EQ(outcomes[0], std::nullopt);
  EXPECT_EQ(outcomes[1], std::nullopt);
  ASSERT_EQ(ledger.batches.size(), 1u);
  ASSERT_TRUE(ledger.batches[0].on_durable);
  ledger.batches[0].on_durable(make_error("database away, no spool"));
  run_ready(io);
  EXPECT_EQ(outcomes[0], std::optional<bool>(false));
  EXPECT_EQ(outcomes[1], std::optional<bool>(false));
}

// A journal write that fails while serving (a full disk, an I/O error; here a file-size
// limit) is said once on stderr, with the errno text and no record; its turn waits for the
// commit. A full journal (below) is not a failure and says nothing.
TEST(LedgerOutbox, AFailedJournalWriteIsSaidOnceOnStderr) {
  asio::io_context io;
  JournalingLedger ledger(1 << 16);
  server::LedgerOutbox outbox(io.get_executor(), ledger);
  std::vector<std::optional<bool>> outcomes;
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit old_limit {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  struct rlimit tiny = old_limit;
  tiny.rlim_cur = 1;  // pwrite(2) past it fails with EFBIG, whatever the file's size
  // Stderr into a pipe (a file would be cut by the same limit).
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  std::cerr.flush();
  const int saved_stderr = ::dup(STDERR_FILENO);
  ::dup2(pipe_fds[1], STDERR_FILENO);
  ::close(pipe_fds[1]);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &tiny), 0);
  spawn_appends(io, outbox, {"secret-call-a"}, outcomes);
  run_ready(io);
  spawn_appends(io, outbox, {"secret-call-b"}, outcomes);
  run_ready(io);
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  std::cerr.flush();
  ::dup2(saved_stderr, STDERR_FILENO);
  ::close(saved_stderr);
  std::string said(4096, '\0');
  const ssize_t got = ::read(pipe_fds[0], said.data(), said.size());
  ::close(pipe_fds[0]);
  said.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
  EXPECT_EQ(outcomes[0], std::nullopt) << "waits for the commit";
  ASSERT_EQ(ledger.batches.size(), 2u);
  EXPECT_NE(said.find("a write failed: File too large"), std::string::npos) << said;
  EXPECT_EQ(said.find("a write failed"), said.rfind("a write failed")) << "once, not per turn: " << said;
  EXPECT_EQ(said.find("secret-call"), std::string::npos) << said;
  for (auto& batch : ledger.batches) batch.on_durable(Result<void>());
  run_ready(io);
}

}  // namespace
