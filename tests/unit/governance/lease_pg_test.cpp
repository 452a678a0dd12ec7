// Lease mode on PostgreSQL against the ledger writer's lock order (docs/ARCHITECTURE.md,
// "Leases"): the writer settles a call by locking its key's budget row, then its team's.
// Taking a lease and the hold sweeper charge expired holds and leases of other keys of the
// team; they must lock those rows in the same one ordered batch as the rest, never after
// the team's row, or the two deadlock (PostgreSQL aborts one of them after
// deadlock_timeout: a failed admission or a failed ledger write). Each case holds the
// writer's first lock on a real connection, lets the store block on it, then takes the
// writer's second lock, which must be granted. On a private cluster
// (scripts/pg-test-cluster.sh), skipped only when the PostgreSQL server binaries are not
// installed.
#include "governance/store.hpp"
#include "ledger/postgres/connection.hpp"
#include "pg_test_cluster.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <functional>
#include <thread>

namespace {

using namespace turnout;
using namespace turnout::governance;
namespace pg = turnout::ledger::pg;

constexpr std::int64_t kCent = 10'000'000'000;  // $0.01 in pico-dollars
constexpr std::int64_t kNow = 1'796'601'600'000;  // 2026-12-07 UTC, inside one monthly period
constexpr int kRounds = 3;                        // each round a fresh team and keys

class PostgresLeases : public turnout::test::PgSchemaTest {
 protected:
  PostgresLeases() : PgSchemaTest("l_") {}

  void SetUp() override {
    PgSchemaTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto session = open_sql_session(url());
    ASSERT_TRUE(session) << session.error().message;
    store_ = std::make_unique<GovernanceStore>(std::move(*session));
  }

  pg::Connection connect() const {
    auto target = pg::ConnectionTarget::parse(url());
    EXPECT_TRUE(target) << target.error().message;
    auto connection = pg::Connection::open(*target);
    EXPECT_TRUE(connection) << connection.error().message;
    return std::move(*connection);
  }

  // A team with a budget and `count` keys in it, each with a budget.
  std::pair<TeamRecord, std::vector<KeyRecord>> team_with_keys(const std::string& team_id, int count) {
    Fields team_fields;
    team_fields.budget_pico.value = 100 * kCent;
    auto team = store_->create_team(team_id, team_fields, "test", kNow);
    EXPECT_TRUE(team) << team.error().message;
    std::vector<KeyRecord> keys;
    for (int i = 0; i < count; ++i) {
      Fields key_fields;
      key_fields.name = "app";
      key_fields.team.value = team_id;
      key_fields.budget_pico.value = 10 * kCent;
      auto key = store_->create_key(key_fields, "test", kNow);
      EXPECT_TRUE(key) << key.error().message;
      keys.push_back(key->record);
    }
    return {*team, keys};
  }

  LeaseRequest lease_request(std::string id, const KeyRecord& key, const TeamRecord& team, std::int64_t now_ms) const {
    LeaseRequest request;
    request.lease_id = std::move(id);
    request.key = &key;
    request.team = &team;
    request.needed_pico = kCent;
    request.max_slice_pico = 4 * kCent;
    request.now_ms = now_ms;
    request.expires_at_ms = now_ms + 5'000;
    return request;
  }

  // Plays the writer settling a call of `first_scope` in `second_scope`: locks the first
  // row, runs `store_work` on another thread, waits until it waits on a lock, then locks
  // the second row. Expects both the writer's locks and `store_work` to succeed.
  void settle_while(const std::string& first_scope, const std::string& second_scope,
                    const std::function<bool()>& store_work) {
    pg::Connection writer = connect();
    pg::Connection observer = connect();
    ASSERT_TRUE(writer.exec("BEGIN"));
    const std::array<pg::Param, 1> first{first_scope};
    auto locked_first = writer.query("SELECT 1 FROM gov_budgets WHERE scope = $1 FOR UPDATE", first);
    ASSERT_TRUE(locked_first) << locked_first.error().message;

    bool store_ok = false;
    std::thread store_thread([&] { store_ok = store_work(); });
    bool store_waits = false;
    for (int i = 0; i < 500 && !store_waits; ++i) {
      auto waiting = observer.query(
          "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
      store_waits = waiting && waiting->integer(0, 0) && *waiting->integer(0, 0) > 0;
      if (!store_waits) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const std::array<pg::Param, 1> second{second_scope};
    auto locked_second = writer.query("SELECT 1 FROM gov_budgets WHERE scope = $1 FOR UPDATE", second);
    const bool committed = locked_second && writer.exec("COMMIT");
    if (!locked_second) (void)writer.exec("ROLLBACK");
    store_thread.join();
    EXPECT_TRUE(store_waits) << "the store never waited on the writer's first lock";
    EXPECT_TRUE(locked_second) << "the writer's second lock: " << locked_second.error().message;
    EXPECT_TRUE(committed);
    EXPECT_TRUE(store_ok) << "the store's transaction failed (a deadlock victim)";
  }

  std::int64_t expired_holds(const std::string& scope) {
    pg::Connection connection = connect();
    const std::array<pg::Param, 1> params{scope};
    auto rows = connection.query("SELECT COALESCE(SUM(expired_holds), 0) FROM gov_budgets WHERE scope = $1", params);
    EXPECT_TRUE(rows) << rows.error().message;
    if (!rows || !rows->integer(0, 0)) return -1;
    return *rows->integer(0, 0);
  }

  std::int64_t held_pico(const std::string& scope) {
    pg::Connection connection = connect();
    const std::array<pg::Param, 1> params{scope};
    auto rows = connection.query("SELECT COALESCE(SUM(held_pico), 0) FROM gov_budgets WHERE scope = $1", params);
    EXPECT_TRUE(rows) << rows.error().message;
    if (!rows || !rows->integer(0, 0)) return -1;
    return *rows->integer(0, 0);
  }

  std::unique_ptr<GovernanceStore> store_;
};

HoldRequest hold_request(std::string id, const KeyRecord& key, const TeamRecord& team, std::int64_t now_ms) {
  HoldRequest request;
  request.hold_id = std::move(id);
  request.key = &key;
  request.team = &team;
  request.amount_pico = kCent;
  request.now_ms = now_ms;
  request.expires_at_ms = now_ms + 1'000;
  return request;
}

// Taking a lease for one key sweeps the expired hold of a sibling key of the team: that
// key's row sorts before the team's and is locked with it, not after it.
TEST_F(PostgresLeases, TakingALeaseThatSweepsASiblingsHoldDoesNotDeadlockWithTheWriter) {
  for (int round = 0; round < kRounds; ++round) {
    const auto [team, keys] = team_with_keys("team-take-" + std::to_string(round), 2);
    ASSERT_EQ(keys.size(), 2U);
    const KeyRecord& taker = keys[0];
    const KeyRecord& sibling = keys[1];
    auto held = store_->hold(hold_request("h" + std::to_string(round), sibling, team, kNow));
    ASSERT_TRUE(held) << held.error().message;
    ASSERT_FALSE(held->refused);

    const std::int64_t later = kNow + 10'000;  // the sibling's hold has expired
    settle_while(key_scope(sibling.id), team_scope(team.id), [&] {
      auto grant = store_->take_lease(lease_request("a" + std::to_string(round), taker, team, later));
      if (!grant) ADD_FAILURE() << grant.error().message;
      return grant && !grant->refused;
    });
    EXPECT_EQ(expired_holds(key_scope(sibling.id)), 1) << "the sibling's expired hold was charged";
  }
}

// The sweeper charges an expired hold of one key and an expired lease of another in one
// transaction: both sets of budget rows are locked in one ordered batch.
TEST_F(PostgresLeases, SweepingExpiredHoldsAndLeasesDoesNotDeadlockWithTheWriter) {
  for (int round = 0; round < kRounds; ++round) {
    const auto [team, keys] = team_with_keys("team-sweep-" + std::to_string(round), 2);
    ASSERT_EQ(keys.size(), 2U);
    auto held = store_->hold(hold_request("s" + std::to_string(round), keys[0], team, kNow));
    ASSERT_TRUE(held) << held.error().message;
    auto grant = store_->take_lease(lease_request("b" + std::to_string(round), keys[1], team, kNow));
    ASSERT_TRUE(grant) << grant.error().message;
    ASSERT_FALSE(grant->refused);

    settle_while(key_scope(keys[1].id), team_scope(team.id), [&] {
      auto swept = store_->sweep_expired(kNow + 60'000);
      if (!swept) ADD_FAILURE() << swept.error().message;
      return swept && *swept == 2;
    });
  }
}

// Giving back part of a team key's lease locks the key's row and the team's in one ordered
// batch, as the writer does when it settles a call of that key: never the team's row first.
TEST_F(PostgresLeases, ReturningPartOfATeamKeysLeaseDoesNotDeadlockWithTheWriter) {
  for (int round = 0; round < kRounds; ++round) {
    const auto [team, keys] = team_with_keys("team-return-" + std::to_string(round), 2);
    ASSERT_EQ(keys.size(), 2U);
    const KeyRecord& taker = keys[0];
    const std::string lease_id = "r" + std::to_string(round);
    auto grant = store_->take_lease(lease_request(lease_id, taker, team, kNow));
    ASSERT_TRUE(grant) << grant.error().message;
    ASSERT_FALSE(grant->refused);
    ASSERT_GT(grant->reserved_pico, kCent);
    const std::int64_t key_held = held_pico(key_scope(taker.id));
    const std::int64_t team_held = held_pico(team_scope(team.id));

    settle_while(key_scope(taker.id), team_scope(team.id), [&] {
      auto without_lease = store_->return_leases({LeaseReturn{lease_id, kCent, kCent}});
      if (!without_lease) ADD_FAILURE() << without_lease.error().message;
      return without_lease && *without_lease == 0;
    });
    EXPECT_EQ(held_pico(key_scope(taker.id)), key_held - kCent);
    EXPECT_EQ(held_pico(team_scope(team.id)), team_held - kCent);
  }
}

}  // namespace
