// Lease mode (issue 17, item 5): a replica's slice of a budget, spent in process and
// settled by the ledger writer, on SQLite: the cap holds over any number of pools (replicas),
// slices shrink with the room, unused parts go back, an expired lease is charged in full.
#include "admit/lease_pool.hpp"
#include "governance/store.hpp"
#include "ledger/backend.hpp"
#include "ledger/hold_settlement.hpp"
#include "ledger/sqlite/db.hpp"
#include "ledger/sqlite/schema.hpp"

#include "sqlite_store_test.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

namespace {

using namespace turnout;
using namespace turnout::admit;
using namespace turnout::governance;
namespace fs = std::filesystem;

constexpr std::int64_t kCent = 10'000'000'000;  // $0.01 in pico-dollars
constexpr std::int64_t kNow = 1'796'558'400'000;  // 2026-12-06 12:00 UTC
constexpr std::int64_t kCallEnds = kNow + 120'000;

TEST(LeaseSlice, AdmitsWhatFitsAndCountsEveryPicoOnce) {
  LeaseSlice slice;
  slice.granted_pico = 1000;
  EXPECT_TRUE(slice.take(600));
  EXPECT_FALSE(slice.take(401));  // 400 left
  EXPECT_TRUE(slice.take(400));
  EXPECT_EQ(slice.available(), 0);
  slice.finish(600, 250);  // cost less than its worst case: 350 free again
  EXPECT_EQ(slice.available(), 350);
  EXPECT_EQ(slice.take_unused(), 350);
  EXPECT_EQ(slice.available(), 0);  // given back: not admitted again
  EXPECT_EQ(slice.in_flight_calls, 1u);
  slice.finish(400, 900);  // an overrun: nothing negative, nothing admitted
  EXPECT_EQ(slice.available(), 0);
  EXPECT_EQ(slice.consumed_pico, 1150);
  EXPECT_EQ(slice.in_flight_pico, 0);
}

TEST(LeaseSlice, SizeShrinksWithTheRoomAndCoversTheCall) {
  EXPECT_EQ(lease_slice(10, 1000, 100), 100);  // the configured most
  EXPECT_EQ(lease_slice(10, 200, 100), 50);    // a quarter of the room
  EXPECT_EQ(lease_slice(90, 200, 100), 90);    // never less than the call that asks
  EXPECT_EQ(lease_slice(30, 30, 100), 30);     // never more than the room
}

class Leases : public turnout::test::SqliteStoreTest {
 protected:
  Leases() : SqliteStoreTest("turnout-leases-") {}
  void SetUp() override {
    SqliteStoreTest::SetUp();
    Fields fields;
    fields.name = "hot";
    fields.budget_pico.value = kCent;
    auto created = store_->create_key(fields, "test", kNow);
    ASSERT_TRUE(created) << created.error().message;
    grant_.key = created->record;
  }
  static LeaseSettings settings(std::int64_t max_slice) {
    return LeaseSettings{max_slice, std::chrono::milliseconds(30'000), std::chrono::milliseconds(5'000)};
  }

  std::optional<std::string> admit(LeasePool& pool, std::int64_t amount) {
    auto outcome = pool.admit(grant_, amount, kNow, kCallEnds);
    EXPECT_FALSE(std::holds_alternative<StoreError>(outcome));
    if (auto* ticket = std::get_if<LeaseTicket>(&outcome)) return ticket->hold_id;
    return std::nullopt;
  }

  // The call's record through the ledger's own SQLite writer, then the pool told.
  void record(LeasePool& pool, const std::string& hold_id, std::int64_t cost, const std::string& record_key) {
    ledger::KeyedRecord keyed;
    keyed.key = record_key;
    keyed.record.id = record_key;
    keyed.record.hold_id = hold_id;
    keyed.record.cost = pricing::Money{cost};
    dir_.write_record(keyed);
    pool.finish(hold_id, cost);
  }

  ScopeUsage usage(std::int64_t now = kNow) {
    auto found = store_->usage(key_scope(grant_.key.id), grant_.key.limits, now);
    EXPECT_TRUE(found);
    return *found;
  }

  KeyGrant grant_;
};

TEST_F(Leases, ASliceIsHeldInTheDatabaseAndSpentLocally) {
  LeasePool pool(*store_, settings(kCent / 5));  // at most $0.002 a lease
  const auto first = admit(pool, kCent / 10);
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->starts_with("lease-"));
  EXPECT_EQ(usage().held_pico, kCent / 5);  // min($0.002, room / 4 = $0.0025)
  const auto second = admit(pool, kCent / 10);  // in process: the same lease
  ASSERT_TRUE(second);
  EXPECT_EQ(usage().held_pico, kCent / 5);
  EXPECT_EQ(pool.leases(), 1u);
  record(pool, *first, kCent / 40, "r1");
  // The writer moved the actual cost from the lease into spent: spent = the ledger's costs.
  EXPECT_EQ(usage().spent_pico, kCent / 40);
  EXPECT_EQ(usage().held_pico, kCent / 5 - kCent / 40);
  // Given back: all but the call still in flight.
  pool.return_unused(kNow, true);
  EXPECT_EQ(usage().held_pico, kCent / 10);
  record(pool, *second, kCent / 10, "r2");
  pool.return_unused(kNow, true);
  EXPECT_EQ(usage().held_pico, 0);
  EXPECT_EQ(usage().spent_pico, kCent / 40 + kCent / 10);
}

// A return whose commit went through but whose answer was lost is sent again by the
// replica; giving the unused part back twice would free room that calls in flight still
// need. A later return overtaking an earlier failed one gives back both parts, once.
TEST_F(Leases, AReturnReSentAfterALostCommitAnswerGivesBackNothingTwice) {
  LeasePool pool(*store_, settings(kCent / 5));
  const auto call = admit(pool, kCent / 10);
  ASSERT_TRUE(call);
  const std::string lease_id(*ledger::lease_of_hold(*call));
  const LeaseReturn first{lease_id, kCent / 20, kCent / 20};
  ASSERT_TRUE(store_->return_leases({first}));
  EXPECT_EQ(usage().held_pico, kCent / 5 - kCent / 20);
  ASSERT_TRUE(store_->return_leases({first}));  // re-sent
  EXPECT_EQ(usage().held_pico, kCent / 5 - kCent / 20);
  // Two more parts; the later reaches the database first.
  const LeaseReturn second{lease_id, kCent / 40, kCent / 20 + kCent / 40};
  const LeaseReturn third{lease_id, kCent / 40, kCent / 20 + kCent / 20};
  ASSERT_TRUE(store_->return_leases({third}));
  ASSERT_TRUE(store_->return_leases({second}));
  EXPECT_EQ(usage().held_pico, kCent / 10);  // the call in flight stays held
}

TEST_F(Leases, FourReplicasNeverSpendPastTheCapAndLeaveLessThanOneCall) {
  std::vector<std::unique_ptr<GovernanceStore>> stores;
  std::vector<std::unique_ptr<LeasePool>> pools;
  for (int i = 0; i < 4; ++i) {
    stores.push_back(open_store());
    pools.push_back(std::make_unique<LeasePool>(*stores.back(), settings(kCent)));
  }
  const std::int64_t worst = 7 * kCent / 100;  // $0.0007 a call at most
  std::int64_t admitted = 0;
  std::int64_t spent = 0;
  int refused_in_a_row = 0;
  for (int call = 0; refused_in_a_row < 8 && call < 1000; ++call) {
    LeasePool& pool = *pools[call % 4];
    const auto hold_id = admit(pool, worst);
    if (!hold_id) {
      ++refused_in_a_row;
      pool.return_unused(kNow, true);  // an idle replica gives its slice back
      continue;
    }
    refused_in_a_row = 0;
    admitted += worst;
    const std::int64_t cost = call % 3 == 0 ? worst : worst / 2;
    record(pool, *hold_id, cost, "r" + std::to_string(call));
    spent += cost;
  }
  for (auto& pool : pools) pool->return_unused(kNow, true);
  EXPECT_EQ(usage().spent_pico, spent);  // by construction
  EXPECT_LE(usage().spent_pico, kCent);
  EXPECT_EQ(usage().held_pico, 0);
  // Drained: what is left cannot hold one more call.
  EXPECT_LT(kCent - usage().spent_pico, worst);
}

TEST_F(Leases, ACallThatDoesNotFitAnywhereIsRefusedWithTheShortfall) {
  LeasePool pool(*store_, settings(kCent));
  ASSERT_TRUE(admit(pool, 9 * kCent / 10));
  auto refused = pool.admit(grant_, 2 * kCent / 10, kNow, kCallEnds);
  ASSERT_TRUE(std::holds_alternative<BudgetShortfall>(refused));
  EXPECT_EQ(std::get<BudgetShortfall>(refused).budget_pico, kCent);
  EXPECT_LE(usage().held_pico, kCent);
}

TEST_F(Leases, AnExpiredLeaseIsChargedInFullAndALateRecordChargesNothingTwice) {
  LeasePool pool(*store_, settings(kCent / 2));
  const auto hold_id = admit(pool, kCent / 10);
  ASSERT_TRUE(hold_id);
  const std::int64_t slice = usage().held_pico;
  ASSERT_GT(slice, 0);
  // The replica died: nothing gives the slice back; past its expiry any sweep charges it.
  auto swept = store_->sweep_expired(kCallEnds + 31'000);
  ASSERT_TRUE(swept);
  EXPECT_EQ(*swept, 1u);
  EXPECT_EQ(usage().held_pico, 0);
  EXPECT_EQ(usage().spent_pico, slice);
  record(pool, *hold_id, kCent / 10, "late");  // drained from a spool afterwards
  EXPECT_EQ(usage().spent_pico, slice);
}

// Only a whole-lease return is kept when it finds no row (its take may still land). An
// ordinary return finds none only when a replica with a later clock already swept and
// charged the lease: retrying it every round until this replica's expiry frees nothing.
TEST_F(Leases, AnOrdinaryReturnThatFindsNoRowIsDroppedAtOnce) {
  LeasePool pool(*store_, settings(kCent / 5));
  ASSERT_TRUE(admit(pool, kCent / 10));
  auto swept = store_->sweep_expired(kCallEnds + 31'000);  // another replica, a later clock
  ASSERT_TRUE(swept);
  ASSERT_EQ(*swept, 1u);
  pool.return_unused(kNow + 1'000, true);  // this replica: long before the lease's expiry
  EXPECT_EQ(pool.pending_returns(), 0u);
  EXPECT_EQ(usage().held_pico, 0);
}

TEST_F(Leases, ADroppedKeyKeepsNoSlice) {
  LeasePool pool(*store_, settings(kCent / 2));
  ASSERT_TRUE(admit(pool, kCent / 10));
  pool.drop_key(grant_.key.id);  // revoked or changed (NOTIFY, or this replica's admin API)
  pool.return_unused(kNow);
  EXPECT_EQ(usage().held_pico, kCent / 10);  // only the call in flight
  // A changed key (a newer updated_at) is not admitted on an older lease either.
  ASSERT_TRUE(admit(pool, kCent / 10));
  grant_.key.updated_at_ms += 1;
  ASSERT_TRUE(admit(pool, kCent / 10));
  // Three leases, each settling one call in flight ($0.001 each); the first two gave back
  // their rest, the new one holds a quarter of the room left ($0.008 / 4).
  EXPECT_EQ(pool.leases(), 3u);
  EXPECT_EQ(usage().held_pico, 3 * kCent / 10 + kCent / 10);
}

// A ledger of the version before leases, with a budget already part spent and held: the
// upgrade adds gov_leases and a lease counts the existing rows.
TEST(LeaseUpgrade, ALedgerFromBeforeLeasesTakesThemOnItsExistingBudgetRows) {
  const fs::path dir = fs::temp_directory_path() / ("turnout-lease-upgrade-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string file = (dir / "ledger.db").string();
  const auto migrations = ledger::sqlite::ledger_migrations();
  const auto step = static_cast<std::size_t>(
      std::find_if(migrations.begin(), migrations.end(),
                   [](const ledger::sqlite::Migration& m) { return m.description == "governance leases"; }) -
      migrations.begin());
  ASSERT_LT(step, migrations.size());
  {
    auto db = ledger::sqlite::Database::open(file);
    ASSERT_TRUE(db) << db.error().message;
    ASSERT_TRUE(ledger::sqlite::migrate(*db, migrations.first(step)));
    ASSERT_EQ(db->query_int("SELECT COUNT(*) FROM sqlite_master WHERE name = 'gov_leases'").value(), 0);
  }
  auto store = GovernanceStore::open("sqlite:" + file);  // migrates to the newest version
  ASSERT_TRUE(store) << store.error().message;
  Fields fields;
  fields.name = "old";
  fields.budget_pico.value = kCent;
  fields.budget_period = BudgetPeriod::lifetime;
  auto key = (*store)->create_key(fields, "test", kNow);
  ASSERT_TRUE(key);
  {
    auto db = ledger::sqlite::Database::open(file);
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec("INSERT INTO gov_budgets (scope, period_start_ms, spent_pico, held_pico) VALUES ('key:" +
                         key->record.id + "', 0, 6000000000, 3000000000)"));
  }
  KeyGrant grant;
  grant.key = key->record;
  LeasePool pool(**store, LeaseSettings{kCent, std::chrono::milliseconds(30'000), std::chrono::milliseconds(5'000)});
  // $0.001 is left: exactly one call of $0.001 fits, the next does not.
  ASSERT_TRUE(std::holds_alternative<LeaseTicket>(pool.admit(grant, kCent / 10, kNow, kCallEnds)));
  EXPECT_TRUE(std::holds_alternative<BudgetShortfall>(pool.admit(grant, 1, kNow, kCallEnds)));
  auto usage = (*store)->usage(key_scope(grant.key.id), grant.key.limits, kNow);
  ASSERT_TRUE(usage);
  EXPECT_EQ(usage->held_pico, 3'000'000'000 + kCent / 10);
  store->reset();
  fs::remove_all(dir);
}

// A renewal racing a key change (review of lease mode): the replica's cached grant still
// says $0.01 when the budget was lowered to $0.001 elsewhere. The lease is sized by the
// budget as stored now, so the calls admitted on the stale grant stay within the new cap.
TEST_F(Leases, ALeaseTakenOnAStaleGrantIsSizedByTheBudgetAsStoredNow) {
  Fields lowered;
  lowered.budget_pico.value = kCent / 10;
  ASSERT_TRUE(store_->update_key(grant_.key.id, lowered, "test", kNow));
  ASSERT_EQ(grant_.key.limits.budget_pico, kCent);  // the replica's view: stale

  LeasePool pool(*store_, settings(kCent / 2));
  std::int64_t admitted = 0;
  for (int call = 0; call < 4; ++call) {
    auto outcome = pool.admit(grant_, kCent / 20, kNow, kCallEnds);
    ASSERT_FALSE(std::holds_alternative<StoreError>(outcome));
    if (std::holds_alternative<LeaseTicket>(outcome)) {
      admitted += kCent / 20;
    } else {
      const auto* shortfall = std::get_if<BudgetShortfall>(&outcome);
      ASSERT_NE(shortfall, nullptr);
      EXPECT_EQ(shortfall->budget_pico, kCent / 10) << "refused against the budget as stored";
    }
    const ScopeUsage now = usage();
    EXPECT_LE(now.spent_pico + now.held_pico, kCent / 10) << "call " << call << " reserved past the new cap";
  }
  EXPECT_EQ(admitted, kCent / 10);
}

// A key revoked after the replica cached it takes no new lease: the call is refused as a
// revoked key, and nothing is reserved.
TEST_F(Leases, ARevokedKeyTakesNoLeaseOnAStaleGrant) {
  ASSERT_TRUE(store_->revoke_key(grant_.key.id, "test", kNow));
  LeasePool pool(*store_, settings(kCent / 5));
  auto outcome = pool.admit(grant_, kCent / 10, kNow, kCallEnds);
  const auto* unusable = std::get_if<KeyUnusable>(&outcome);
  ASSERT_NE(unusable, nullptr);
  EXPECT_EQ(unusable->why, "has been revoked");
  EXPECT_EQ(usage().held_pico, 0);
  EXPECT_EQ(pool.leases(), 0u);
}

// A key moved to another team after this replica cached it: the renewal reads the key as
// stored, so its lease counts in the new team's budget, and dropping the new team (its
// change reaching this replica) must find that lease, not only leases of the old team.
TEST_F(Leases, ALeaseCountsInTheTeamAsStoredAndDroppingThatTeamFindsIt) {
  Fields budgeted;
  budgeted.budget_pico.value = kCent;
  auto old_team = store_->create_team("old", budgeted, "test", kNow);
  auto new_team = store_->create_team("new", budgeted, "test", kNow);
  ASSERT_TRUE(old_team && new_team);
  Fields into_old;
  into_old.team.value = "old";
  auto cached_key = store_->update_key(grant_.key.id, into_old, "test", kNow);
  ASSERT_TRUE(cached_key);
  grant_.key = *cached_key;
  grant_.team = *old_team;  // the replica's cached grant: team "old"
  Fields into_new;
  into_new.team.value = "new";
  ASSERT_TRUE(store_->update_key(grant_.key.id, into_new, "test", kNow));

  LeasePool pool(*store_, settings(kCent / 5));
  ASSERT_TRUE(admit(pool, kCent / 10));
  const auto new_team_held = [&] {
    auto found = store_->usage(team_scope("new"), new_team->limits, kNow);
    EXPECT_TRUE(found);
    return found ? found->held_pico : -1;
  };
  ASSERT_EQ(new_team_held(), kCent / 5) << "the lease counts in the team as stored";
  pool.drop_team("new");  // the key's move reaches this replica
  pool.return_unused(kNow);
  EXPECT_EQ(new_team_held(), kCent / 10) << "only the call in flight: the lease was dropped";
  EXPECT_EQ(usage().held_pico, kCent / 10);
}

// Faults a session can show, set by the test as it goes.
struct SessionFaults {
  // The next COMMIT goes through but its answer is lost (the connection drops as the
  // server acknowledges): the caller hears a failure for a transaction that stands.
  bool lose_next_commit = false;
  // The database answers every lease insert with an error (a deadlock victim, a full
  // disk...): the transaction rolls back, nothing stands.
  bool fail_lease_inserts = false;
  // The next COMMIT's answer is lost while the server is still finishing it: the
  // transaction stands only once the test lands it (FaultySession::land_late_commit).
  bool delay_next_commit = false;
  // The database is away: nothing connects.
  bool down = false;
  int transactions_begun = 0;
};

class FaultySession final : public SqlSession {
 public:
  FaultySession(std::unique_ptr<SqlSession> inner, SessionFaults& faults) : inner_(std::move(inner)), faults_(faults) {}
  Engine engine() const override { return inner_->engine(); }
  Result<std::vector<SqlRow>> run(std::string_view sql, std::span<const SqlParam> params) override {
    if (faults_.down) return make_error("could not connect to the database");
    if (faults_.fail_lease_inserts && sql.starts_with("INSERT INTO gov_leases"))
      return make_error("deadlock detected");
    transaction_.emplace_back(std::string(sql), std::vector<SqlParam>(params.begin(), params.end()));
    return inner_->run(sql, params);
  }
  // The delayed COMMIT finishes: its transaction's statements, run again and committed.
  Result<void> land_late_commit() {
    if (auto begun = inner_->begin_write(); !begun) return begun;
    for (const auto& [sql, params] : late_)
      if (auto ran = inner_->run(sql, params); !ran) return ran.error();
    late_.clear();
    return inner_->commit();
  }
  Result<void> begin_write() override {
    ++faults_.transactions_begun;
    if (faults_.down) return make_error("could not connect to the database");
    lost_connection_ = false;  // reconnected
    transaction_.clear();
    return inner_->begin_write();
  }
  Result<void> commit() override {
    if (faults_.delay_next_commit) {
      faults_.delay_next_commit = false;
      inner_->rollback();
      late_ = std::move(transaction_);
      lost_connection_ = true;
      return make_error("the connection closed before the COMMIT answer arrived");
    }
    auto committed = inner_->commit();
    if (!committed || !faults_.lose_next_commit) return committed;
    faults_.lose_next_commit = false;
    lost_connection_ = true;
    return make_error("the connection closed before the COMMIT answer arrived");
  }
  void rollback() noexcept override { inner_->rollback(); }
  bool broken() const override { return faults_.down || lost_connection_ || inner_->broken(); }

 private:
  std::unique_ptr<SqlSession> inner_;
  SessionFaults& faults_;
  bool lost_connection_ = false;
  std::vector<std::pair<std::string, std::vector<SqlParam>>> transaction_;  // statements since BEGIN
  std::vector<std::pair<std::string, std::vector<SqlParam>>> late_;         // a delayed COMMIT's
};

class FaultyLeases : public Leases {
 protected:
  void SetUp() override {
    Leases::SetUp();
    auto session = open_sql_session(dir_.ledger_url());
    ASSERT_TRUE(session) << session.error().message;
    auto faulty_session = std::make_unique<FaultySession>(std::move(*session), faults_);
    faulty_session_ = faulty_session.get();
    faulty_ = std::make_unique<GovernanceStore>(std::move(faulty_session));
  }
  void TearDown() override {
    faulty_.reset();
    Leases::TearDown();
  }

  SessionFaults faults_;
  FaultySession* faulty_session_ = nullptr;  // owned by faulty_
  std::unique_ptr<GovernanceStore> faulty_;
};

// A renewal whose COMMIT answer is lost leaves a lease the replica never learns of: the
// pool gives it back whole on its next round instead of leaving the slice stranded until
// the lease expires.
TEST_F(FaultyLeases, ALeaseWhoseCommitAnswerWasLostIsGivenBackWhole) {
  LeasePool pool(*faulty_, settings(kCent / 5));
  faults_.lose_next_commit = true;
  auto lost = pool.admit(grant_, kCent / 10, kNow, kCallEnds);
  ASSERT_TRUE(std::holds_alternative<StoreError>(lost)) << "the replica hears a failure";
  EXPECT_EQ(std::get<StoreError>(lost).kind, FailureKind::commit_unknown);
  EXPECT_EQ(usage().held_pico, kCent / 5) << "yet the lease was stored";
  EXPECT_EQ(pool.leases(), 0u);
  EXPECT_EQ(pool.pending_returns(), 1u);

  pool.return_unused(kNow);  // the keeper's next round, long before the lease expires
  EXPECT_EQ(usage().held_pico, 0) << "the unknown lease is given back whole";
  EXPECT_EQ(pool.pending_returns(), 0u);

  // The next call takes a new lease as usual, and the round leaves a lease in use alone.
  const auto next = pool.admit(grant_, kCent / 10, kNow, kCallEnds);
  ASSERT_TRUE(std::holds_alternative<LeaseTicket>(next));
  pool.return_unused(kNow);
  EXPECT_EQ(usage().held_pico, kCent / 5);
}

// The whole-lease return can run before the server has finished the COMMIT whose answer
// was lost. It then finds no lease row; dropped, the slice would stay reserved until the
// lease expired. It is kept and retried until the lease's expiry, then dropped.
TEST_F(FaultyLeases, AWholeLeaseReturnThatFindsNoRowIsRetriedUntilTheLeaseExpires) {
  LeasePool pool(*faulty_, settings(kCent / 5));
  faults_.delay_next_commit = true;
  auto lost = pool.admit(grant_, kCent / 10, kNow, kCallEnds);
  ASSERT_TRUE(std::holds_alternative<StoreError>(lost));
  EXPECT_EQ(std::get<StoreError>(lost).kind, FailureKind::commit_unknown);
  EXPECT_EQ(usage().held_pico, 0) << "the COMMIT has not landed yet";
  pool.return_unused(kNow);  // the keeper's round runs first: no lease row
  EXPECT_EQ(pool.pending_returns(), 1u) << "kept: the lease may still land";
  ASSERT_TRUE(faulty_session_->land_late_commit());
  EXPECT_EQ(usage().held_pico, kCent / 5) << "the lease stands now";
  pool.return_unused(kNow + 1'000);
  EXPECT_EQ(usage().held_pico, 0) << "given back whole on the next round";
  EXPECT_EQ(pool.pending_returns(), 0u);

  // A take whose COMMIT never lands: its return is retried until the lease expires, then dropped.
  faults_.delay_next_commit = true;
  ASSERT_TRUE(std::holds_alternative<StoreError>(pool.admit(grant_, kCent / 10, kNow, kCallEnds)));
  pool.return_unused(kCallEnds);
  EXPECT_EQ(pool.pending_returns(), 1u);
  pool.return_unused(kCallEnds + 30'000);  // the lease's expiry: call end + ttl
  EXPECT_EQ(pool.pending_returns(), 0u);
  EXPECT_EQ(usage().held_pico, 0);
}

// Review of lease mode: every failed take queued a whole-lease return, so a database
// answering errors for minutes grew the queue by one per call. A failure that wrote
// nothing has nothing to give back.
TEST_F(FaultyLeases, TakesThatFailedWithNothingWrittenQueueNoReturns) {
  LeasePool pool(*faulty_, settings(kCent / 5));
  faults_.fail_lease_inserts = true;
  for (int call = 0; call < 50; ++call) {
    auto failed = pool.admit(grant_, kCent / 10, kNow, kCallEnds);
    ASSERT_TRUE(std::holds_alternative<StoreError>(failed));
    EXPECT_EQ(std::get<StoreError>(failed).kind, FailureKind::database);
  }
  EXPECT_EQ(pool.pending_returns(), 0u);
  faults_.fail_lease_inserts = false;
  faults_.down = true;
  for (int call = 0; call < 50; ++call) {
    ASSERT_TRUE(std::holds_alternative<StoreError>(pool.admit(grant_, kCent / 10, kNow, kCallEnds)));
  }
  EXPECT_EQ(pool.pending_returns(), 0u);
  faults_.down = false;
  EXPECT_EQ(usage().held_pico, 0);
  ASSERT_TRUE(std::holds_alternative<LeaseTicket>(pool.admit(grant_, kCent / 10, kNow, kCallEnds)));
}

// The queue is bounded: past max_pending_returns a return is dropped and its slice stays
// reserved (unspendable) until the lease expires, when it is charged as expired. Never
// more than the budget is spent or held.
TEST_F(FaultyLeases, PendingReturnsAreBoundedAndADroppedOneStaysReservedUntilExpiry) {
  LeaseSettings bounded = settings(kCent / 10);
  bounded.max_pending_returns = 2;
  LeasePool pool(*faulty_, bounded);
  for (int call = 0; call < 4; ++call) {
    faults_.lose_next_commit = true;
    ASSERT_TRUE(std::holds_alternative<StoreError>(pool.admit(grant_, kCent / 20, kNow, kCallEnds)));
  }
  EXPECT_EQ(pool.pending_returns(), 2u);
  EXPECT_EQ(usage().held_pico, 4 * kCent / 10);
  pool.return_unused(kNow);
  EXPECT_EQ(pool.pending_returns(), 0u);
  EXPECT_EQ(usage().held_pico, 2 * kCent / 10) << "the two dropped returns' leases stay reserved";
  auto swept = store_->sweep_expired(kCallEnds + 31'000);
  ASSERT_TRUE(swept);
  const ScopeUsage after = usage();
  EXPECT_EQ(after.held_pico, 0);
  EXPECT_EQ(after.spent_pico, 2 * kCent / 10);
}

// With the database away a round tries one return, not every one (each would wait out its
// own connect timeout), and keeps them all for the next round.
TEST_F(FaultyLeases, ARoundWithTheDatabaseAwayStopsAtTheFirstFailedReturn) {
  LeasePool pool(*faulty_, settings(kCent / 10));
  for (int call = 0; call < 3; ++call) {
    faults_.lose_next_commit = true;
    ASSERT_TRUE(std::holds_alternative<StoreError>(pool.admit(grant_, kCent / 20, kNow, kCallEnds)));
  }
  ASSERT_EQ(pool.pending_returns(), 3u);
  faults_.down = true;
  faults_.transactions_begun = 0;
  pool.return_unused(kNow);
  EXPECT_EQ(faults_.transactions_begun, 1);
  EXPECT_EQ(pool.pending_returns(), 3u);
  faults_.down = false;
  pool.return_unused(kNow);
  EXPECT_EQ(pool.pending_returns(), 0u);
  EXPECT_EQ(usage().held_pico, 0);
}

}  // namespace
