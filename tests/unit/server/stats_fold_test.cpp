// /stats and /stats/series read the SQLite roll-ups after asking the ledger's writer for a
// fold (endpoints/fold_wait.hpp): when the fold fails the body says why (rollups_stale),
// and await_fold's own time limit and a writer answering after it are exercised on a
// real ledger whose writer is held.
#include "ledger/ledger.hpp"
#include "ledger/sqlite/backend.hpp"
#include "server/endpoints/endpoint.hpp"
#include "server/endpoints/fold_wait.hpp"
#include "../ledger/ledger_reference.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <limits>
#include <string>

namespace turnout::server {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

using ledger::test::TempDir;

ledger::CallRecord call_costing(std::string id, double timestamp, std::int64_t pico) {
  ledger::CallRecord record;
  record.id = std::move(id);
  record.timestamp = timestamp;
  record.requested_model = record.model = "gpt-4o";
  record.route = "explicit";
  record.attempts = 1;
  record.latency_ms = 5;
  record.usage_reported = true;
  record.cost = pricing::Money{pico};
  return record;
}

// A real gateway's services around `ledger`: the stats endpoints use the ledger and the
// blocking pool only.
struct Gateway {
  explicit Gateway(ledger::Ledger& ledger)
      : snapshot(build_snapshot(config::Config{}, "secret", nullptr).value()),
        services(snapshot, ledger, GatewayOptions{}) {
    services.blocking_pool = std::make_unique<asio::thread_pool>(1);
  }
  ~Gateway() { services.blocking_pool->join(); }

  // Runs `handler` for GET `target` to its end on this thread's io_context.
  HttpResponse get(endpoints::Handler handler, std::string target) {
    HttpRequest request{http::verb::get, target, 11};
    boost::beast::tcp_stream stream(io);
    listener::Connection connection{stream, 0};
    Exchange exchange;
    WorkerState worker(io.get_executor(), nullptr, nullptr, services.ledger);
    Call call{request, connection, exchange, worker, *snapshot};
    std::optional<HttpResponse> response;
    bool done = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          response = co_await handler(services, call);
          done = true;
        },
        asio::detached);
    run_until([&] { return done; });
    EXPECT_TRUE(response.has_value());
    return response.value_or(HttpResponse{});
  }

  template <class Condition>
  void run_until(Condition condition) {
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    while (!condition() && std::chrono::steady_clock::now() < give_up) {
      io.restart();
      io.run_for(5ms);
    }
    ASSERT_TRUE(condition());
  }

  asio::io_context io;
  std::shared_ptr<const ConfigSnapshot> snapshot;
  Services services;
};

std::string rollups_stale(const HttpResponse& response) {
  EXPECT_EQ(response.result_int(), 200U) << response.body();
  const boost::json::value body = boost::json::parse(response.body());
  const auto* field = body.as_object().if_contains("rollups_stale");
  return field != nullptr ? std::string(field->as_string()) : std::string();
}

// Two calls whose costs overflow their bucket's 64-bit sum: no fold can count them.
TEST(StatsFold, AFailingFoldIsReportedInTheStatsAndSeriesBodies) {
  TempDir dir;
  const fs::path file = dir.path() / "ledger.db";
  {
    auto backend = ledger::SqliteBackend::open(file.string());
    ASSERT_TRUE(backend) << backend.error().message;
    const std::int64_t half = std::numeric_limits<std::int64_t>::max() / 2 + 1;
    const std::vector<ledger::KeyedRecord> poison{{"a", call_costing("a", 1'700'000'000, half)},
                                                  {"b", call_costing("b", 1'700'000'001, half)}};
    ASSERT_TRUE((*backend)->write_batch(poison));
  }
  auto ledger = ledger::open_ledger("sqlite:" + file.string());
  ASSERT_TRUE(ledger) << ledger.error().message;
  Gateway gateway(**ledger);
  EXPECT_NE(rollups_stale(gateway.get(&endpoints::stats, "/stats")).find("could not be folded"), std::string::npos);
  EXPECT_NE(rollups_stale(gateway.get(&endpoints::stats_series, "/stats/series")).find("could not be folded"),
            std::string::npos);
}

// The writer held (in a durability callback, as in a busy timeout): await_fold gives up at
// its limit and says so; the writer's answer that comes later is dropped harmlessly, and
// once the writer is free a read is complete again.
TEST(StatsFold, AWaitForAHeldWriterEndsAtItsLimitAndALateAnswerIsHarmless) {
  TempDir dir;
  ledger::LedgerOptions options;
  options.rollup_fold_interval = std::chrono::hours(1);
  options.rollup_fold_calls = 1'000'000;
  auto ledger = ledger::open_ledger("sqlite:" + (dir.path() / "ledger.db").string(), options);
  ASSERT_TRUE(ledger) << ledger.error().message;
  Gateway gateway(**ledger);
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  (*ledger)->append(call_costing("held", 1'700'000'000, 7), [&entered, released](Result<void>) {
    entered.set_value();
    released.wait();
  });
  entered.get_future().wait();

  std::optional<ledger::FoldOutcome> outcome;
  const auto asked = std::chrono::steady_clock::now();
  asio::co_spawn(
      gateway.io,
      [&]() -> asio::awaitable<void> { outcome = co_await endpoints::await_fold(gateway.services, 100ms); },
      asio::detached);
  gateway.run_until([&] { return outcome.has_value(); });
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 2s);
  EXPECT_FALSE(outcome->complete);
  EXPECT_NE(outcome->problem.find("did not fold the roll-ups within 100 ms"), std::string::npos) << outcome->problem;

  release.set_value();  // the writer folds and answers the request that already gave up
  gateway.run_until([&] { return (*ledger)->health().degraded.empty(); });
  const HttpResponse after = gateway.get(&endpoints::stats, "/stats");
  EXPECT_EQ(rollups_stale(after), "");
  EXPECT_EQ(boost::json::parse(after.body()).at("total_calls").as_int64(), 1);
}

}  // namespace
}  // namespace turnout::server
