// Budget holds on SQLite (issue 17, item 3): all or nothing against key and team, settled
// by the ledger writer's batch (spent == sum of ledger costs), expired holds charged in
// full, periods as row keys (Europe/Berlin month end with an injected clock).
#include "governance/store.hpp"
#include "ledger/backend.hpp"
#include "ledger/sqlite/backend.hpp"

#include "sqlite_store_test.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace {

using namespace turnout;
using namespace turnout::governance;
namespace fs = std::filesystem;

constexpr std::int64_t kCent = 10'000'000'000;  // $0.01 in pico-dollars

std::int64_t utc_ms(int y, unsigned m, unsigned d, int hh, int mm, int ss) {
  using namespace std::chrono;
  const auto days = sys_days{year{y} / month{m} / day{d}};
  return duration_cast<milliseconds>((days + hours{hh} + minutes{mm} + seconds{ss}).time_since_epoch()).count();
}

class Holds : public turnout::test::SqliteStoreTest {
 protected:
  Holds() : SqliteStoreTest("turnout-holds-") {}

  KeyRecord make_key(std::optional<std::int64_t> budget, std::optional<std::string> team = std::nullopt,
                     std::string timezone = "UTC") {
    Fields fields;
    fields.name = "app";
    fields.budget_pico.value = budget;
    fields.timezone = timezone;
    fields.team.value = team;
    auto created = store_->create_key(fields, "test", now_);
    EXPECT_TRUE(created) << (created ? "" : created.error().message);
    return created->record;
  }

  HoldRequest request(const KeyRecord& key, const TeamRecord* team, std::int64_t amount, std::string id) {
    HoldRequest r;
    r.hold_id = std::move(id);
    r.key = &key;
    r.team = team;
    r.amount_pico = amount;
    r.now_ms = now_;
    r.expires_at_ms = now_ + 60'000;
    return r;
  }

  // Stores a call record carrying `hold_id` through the ledger's own SQLite backend.
  void settle(const std::string& hold_id, std::int64_t cost_pico, const std::string& record_key) {
    ledger::KeyedRecord keyed;
    keyed.key = record_key;
    keyed.record.id = "req";
    keyed.record.hold_id = hold_id;
    keyed.record.cost = pricing::Money{cost_pico};
    dir_.write_record(keyed);
  }

  ScopeUsage usage_of(const KeyRecord& key) {
    auto usage = store_->usage(key_scope(key.id), key.limits, now_);
    EXPECT_TRUE(usage);
    return *usage;
  }

  std::int64_t now_ = utc_ms(2026, 12, 6, 12, 0, 0);
};

TEST_F(Holds, HoldsUpToTheBudgetAndNoFurther) {
  const KeyRecord key = make_key(kCent);
  auto first = store_->hold(request(key, nullptr, 6 * kCent / 10, "h1"));
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->refused);
  EXPECT_EQ(first->remaining_pico, 4 * kCent / 10);
  auto second = store_->hold(request(key, nullptr, 5 * kCent / 10, "h2"));
  ASSERT_TRUE(second);
  ASSERT_TRUE(second->refused);
  EXPECT_EQ(second->refused->used_pico, 6 * kCent / 10);
  EXPECT_EQ(second->refused->budget_pico, kCent);
  auto exact = store_->hold(request(key, nullptr, 4 * kCent / 10, "h3"));
  ASSERT_TRUE(exact);
  EXPECT_FALSE(exact->refused);  // exactly the rest fits
  EXPECT_EQ(usage_of(key).held_pico, kCent);
  EXPECT_EQ(usage_of(key).remaining_pico, 0);
}

TEST_F(Holds, TeamBudgetRefusesWithoutTouchingTheKeyRow) {
  Fields team_fields;
  team_fields.budget_pico.value = kCent;
  auto team = store_->create_team("research", team_fields, "test", now_);
  ASSERT_TRUE(team);
  const KeyRecord key = make_key(std::nullopt, "research");  // the key itself is unlimited
  ASSERT_FALSE(store_->hold(request(key, &*team, kCent, "h1"))->refused);
  auto refused = store_->hold(request(key, &*team, 1, "h2"));
  ASSERT_TRUE(refused);
  ASSERT_TRUE(refused->refused);
  EXPECT_EQ(refused->refused->scope, "team:research");
  // All or nothing: the refused hold left no trace on the key's row either.
  EXPECT_EQ(usage_of(key).held_pico, kCent);
}

TEST_F(Holds, SettlementMovesTheActualCostFromHeldToSpentOnce) {
  const KeyRecord key = make_key(kCent);
  ASSERT_FALSE(store_->hold(request(key, nullptr, kCent, "aa01"))->refused);
  settle("aa01", 3 * kCent / 10, "rec-1");
  EXPECT_EQ(usage_of(key).held_pico, 0);
  EXPECT_EQ(usage_of(key).spent_pico, 3 * kCent / 10);
  // The same record written again (a retried batch) and another record naming the same
  // hold change nothing: the hold is gone.
  settle("aa01", 3 * kCent / 10, "rec-1");
  settle("aa01", 5 * kCent / 10, "rec-2");
  EXPECT_EQ(usage_of(key).spent_pico, 3 * kCent / 10);
  // The released room is usable again.
  EXPECT_FALSE(store_->hold(request(key, nullptr, 7 * kCent / 10, "aa02"))->refused);
}

TEST_F(Holds, ExpiredHoldsAreChargedInFull) {
  const KeyRecord key = make_key(kCent);
  HoldRequest crashed = request(key, nullptr, 4 * kCent / 10, "dead");
  crashed.expires_at_ms = now_ + 1000;
  ASSERT_FALSE(store_->hold(crashed)->refused);
  now_ += 2000;  // the replica that took it never settled
  // The next hold on the key sweeps it: charged in full, no longer held.
  ASSERT_FALSE(store_->hold(request(key, nullptr, 6 * kCent / 10, "live"))->refused);
  EXPECT_EQ(usage_of(key).spent_pico, 4 * kCent / 10);
  EXPECT_EQ(usage_of(key).held_pico, 6 * kCent / 10);
  // Its record arriving late (from a spool) does not charge it twice.
  settle("dead", kCent / 10, "late");
  EXPECT_EQ(usage_of(key).spent_pico, 4 * kCent / 10);
}

TEST_F(Holds, BerlinMonthlyBudgetRefusesAtTheLastSecondAndAdmitsAtMidnight) {
  Fields fields;
  fields.name = "monthly";
  fields.budget_pico.value = kCent;
  fields.budget_period = BudgetPeriod::month;
  fields.timezone = "Europe/Berlin";
  auto created = store_->create_key(fields, "test", now_);
  ASSERT_TRUE(created);
  const KeyRecord& key = created->record;
  now_ = utc_ms(2026, 12, 31, 22, 0, 0);  // 23:00 in Berlin
  ASSERT_FALSE(store_->hold(request(key, nullptr, kCent, "dec"))->refused);
  settle("dec", kCent, "dec-record");
  now_ = utc_ms(2026, 12, 31, 22, 59, 59);  // 23:59:59 on the last day
  auto last_second = store_->hold(request(key, nullptr, 1, "late-dec"));
  ASSERT_TRUE(last_second);
  ASSERT_TRUE(last_second->refused);
  EXPECT_EQ(last_second->refused->period.end_ms, utc_ms(2026, 12, 31, 23, 0, 0));
  now_ = utc_ms(2026, 12, 31, 23, 0, 0);  // 00:00:00 on 1 January
  auto midnight = store_->hold(request(key, nullptr, kCent, "jan"));
  ASSERT_TRUE(midnight);
  EXPECT_FALSE(midnight->refused);
}

TEST_F(Holds, KeysAndTeamsAreValidatedAndAudited) {
  Fields bad;
  bad.name = "x";
  bad.timezone = "Nowhere/Else";
  auto refused = store_->create_key(bad, "test", now_);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, FailureKind::invalid);
  Fields unknown_team;
  unknown_team.name = "x";
  unknown_team.team.value = "ghosts";
  EXPECT_FALSE(store_->create_key(unknown_team, "test", now_));
  const KeyRecord key = make_key(kCent);
  auto revoked = store_->revoke_key(key.id, "test", now_);
  ASSERT_TRUE(revoked);
  EXPECT_TRUE(revoked->revoked_at_ms);
  auto rotated = store_->rotate_key(key.id, "test", now_);
  ASSERT_FALSE(rotated);  // a revoked key stays revoked
  EXPECT_EQ(store_->find_key("0000000000000000").error().kind, FailureKind::not_found);
}

// In `serve` the ledger writer checkpoints the WAL between its rounds and lets it hold
// more than SQLite's 1,000-page auto-checkpoint; a hold commits on the request path, so
// serve's governance connections leave the checkpoint to the writer.
TEST_F(Holds, AHoldCommitLeavesTheWalCheckpointToTheLedgerWriter) {
  const KeyRecord key = make_key(100 * kCent);
  const fs::path file = dir_.ledger_file();
  const fs::path wal = dir_.path() / "ledger.db-wal";
  auto backend = ledger::SqliteBackend::open(file.string());  // kept open: its WAL stays
  ASSERT_TRUE(backend) << backend.error().message;
  std::vector<ledger::KeyedRecord> batch(200);
  for (int round = 0; round < 100 && fs::file_size(wal) < 1'200 * (4096 + 24); ++round) {
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i].key = "fill-" + std::to_string(round) + "-" + std::to_string(i);
      batch[i].record.id = "req-" + batch[i].key;
      batch[i].record.model = "gpt-4o";
    }
    ASSERT_TRUE((*backend)->write_batch(batch));
  }
  ASSERT_GE(fs::file_size(wal), 1'200u * (4096 + 24));

  auto serving = GovernanceStore::open(dir_.ledger_url(), WalCheckpoints::by_ledger_writer);
  ASSERT_TRUE(serving) << serving.error().message;
  const auto database_before = fs::file_size(file);
  ASSERT_FALSE((*serving)->hold(request(key, nullptr, kCent, "served"))->refused);
  EXPECT_EQ(fs::file_size(file), database_before);  // no pages copied from the WAL
  EXPECT_EQ(usage_of(key).held_pico, kCent);

  // A CLI connection keeps SQLite's auto-checkpoint: its commit copies the WAL.
  ASSERT_FALSE(store_->hold(request(key, nullptr, kCent, "cli"))->refused);
  EXPECT_GT(fs::file_size(file), database_before);
}

}  // namespace
