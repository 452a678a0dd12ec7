// RollupBuilder reuses the rows of the previous call when a call has the same instance,
// model, route, client key, endpoint and buckets (issue 16). These tests hold that path to
// the one that looks every row up: the same sums, and a failed add leaves no trace on
// either; a copied builder never writes into the rows of the one it was copied from.
#include "ledger/rollup.hpp"
#include "ledger_reference.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using namespace turnout;
using namespace turnout::ledger;
using namespace turnout::ledger::test;

// Every row of every table as text, in key order: equal texts, equal builders.
std::vector<std::string> rows_of(const RollupBuilder& builder) {
  std::vector<std::string> rows;
  std::string row;
  const auto column = [&row](const auto& value) {
    if constexpr (std::is_same_v<std::decay_t<decltype(value)>, std::string_view>) {
      row += value;
    } else {
      row += std::to_string(value);
    }
    row += '|';
  };
  const auto table = [&](const char* name, const auto& rows_by_key) {
    for (const auto& [key, totals] : rows_by_key) {
      row = name;
      row += ':';
      visit_columns(key, totals, column);
      rows.push_back(row);
    }
  };
  table("totals", builder.totals());
  table("keys", builder.key_totals());
  table("endpoints", builder.endpoint_totals());
  for (const auto& [key, cells] : builder.latencies()) {
    row = "latencies:" + std::to_string(key.width) + '|' + std::to_string(key.bucket) + '|' + key.instance_id + '|' +
          key.model + '|';
    for (const auto& [bucket, cell] : cells) {
      row += std::to_string(bucket) + ',' + std::to_string(cell.count) + ',' + std::to_string(cell.min_ms) + ',' +
             std::to_string(cell.max_ms) + ' ';
    }
    rows.push_back(row);
  }
  return rows;
}

// Runs of calls of one shape (the reuse), shapes changing between and within runs, calls
// crossing second, minute and day buckets, and calls on both sides of the second rows'
// horizon.
std::vector<CallRecord> mixed_calls() {
  std::mt19937_64 rng(16);
  const auto pick = [&rng](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  const std::vector<std::string> models{"gpt-4o", "gpt-4o-mini"};
  const std::vector<std::string> routes{"simple", "complex"};
  const std::vector<std::string> keys{"", "key-1"};
  const std::vector<std::string> endpoints{"chat", "embeddings"};
  const std::vector<std::string> instances{"instance-a", "instance-b"};
  std::vector<CallRecord> calls;
  double timestamp = 1'700'000'000 - 90'000;  // before the horizon below, then past it
  CallRecord shape = sample_record("call", timestamp, "gpt-4o");
  for (int i = 0; i < 800; ++i) {
    if (pick(8) == 0) {
      shape.model = models[pick(models.size())];
      shape.route = routes[pick(routes.size())];
      shape.client_key_id = keys[pick(keys.size())];
      shape.endpoint = endpoints[pick(endpoints.size())];
      shape.instance_id = instances[pick(instances.size())];
    }
    timestamp += pick(50) == 0 ? 7'000.0 : static_cast<double>(pick(4)) * 0.25;
    CallRecord call = shape;
    call.id = "call-" + std::to_string(i);
    call.timestamp = timestamp;
    call.status = pick(10) == 0 ? 502 : 200;
    call.usage = {pick(5000), pick(2000), 0};
    call.latency_ms = static_cast<double>(pick(3000)) * 0.5 + 0.125;
    call.cost = pick(10) == 0 ? std::nullopt : std::optional(Money{static_cast<std::int64_t>(pick(1'000'000))});
    call.baseline_cost = pick(5) == 0 ? std::nullopt : std::optional(Money{static_cast<std::int64_t>(pick(3'000'000))});
    calls.push_back(std::move(call));
  }
  return calls;
}

TEST(RollupBuilder, ReusedRowsSumAsLookedUpRowsDo) {
  const double seconds_since = 1'700'000'000 - 60'000;
  for (const bool by_endpoint : {true, false}) {
    RollupBuilder reusing(seconds_since, by_endpoint);
    RollupBuilder looking_up(seconds_since, by_endpoint);
    for (const CallRecord& call : mixed_calls()) {
      ASSERT_TRUE(reusing.add(call));
      looking_up = RollupBuilder(looking_up);  // a copy starts without the last call's rows
      ASSERT_TRUE(looking_up.add(call));
    }
    EXPECT_EQ(rows_of(reusing), rows_of(looking_up)) << "by_endpoint " << by_endpoint;
    EXPECT_GT(reusing.totals().size(), 100U);  // the calls spread over many rows
  }
}

TEST(RollupBuilder, AnOverflowOnReusedRowsLeavesNoTrace) {
  RollupBuilder builder(0);
  CallRecord call = sample_record("first", 1'700'000'000.5, "gpt-4o");
  call.baseline_cost = std::nullopt;
  call.cost = Money{std::numeric_limits<std::int64_t>::max() - 10};
  ASSERT_TRUE(builder.add(call));
  const auto before = rows_of(builder);
  for (const bool key_only : {false, true}) {
    // The same shape and second: the rows of the call before are reused. The second time,
    // only the per-key sum overflows (a call of another route shares the key's rows).
    CallRecord too_much = call;
    too_much.id = "overflows";
    too_much.cost = Money{100};
    if (key_only) {
      too_much.route = "complex";
      CallRecord free = too_much;
      free.cost = Money{0};
      ASSERT_TRUE(builder.add(free));
    }
    const auto kept = rows_of(builder);
    EXPECT_FALSE(builder.add(too_much));
    EXPECT_EQ(rows_of(builder), kept);
  }
  // And the builder still adds what fits, to the same rows.
  CallRecord fits = call;
  fits.cost = Money{5};
  ASSERT_TRUE(builder.add(fits));
  const RollupKey minute{60, bucket_start(call.timestamp, 60), call.instance_id, call.model, call.route};
  EXPECT_EQ(builder.totals().at(minute).priced_cost, std::numeric_limits<std::int64_t>::max() - 5);
  EXPECT_NE(rows_of(builder), before);
}

TEST(RollupBuilder, ACopyNeverWritesIntoTheRowsOfTheOriginal) {
  RollupBuilder original(0);
  const CallRecord call = sample_record("one", 1'700'000'000.5, "gpt-4o");
  ASSERT_TRUE(original.add(call));
  const auto before = rows_of(original);
  RollupBuilder copy(original);
  ASSERT_TRUE(copy.add(call));
  RollupBuilder assigned(0);
  assigned = original;
  ASSERT_TRUE(assigned.add(call));
  EXPECT_EQ(rows_of(original), before);
  EXPECT_EQ(rows_of(copy), rows_of(assigned));
  EXPECT_EQ(copy.totals().begin()->second.calls, 2);
  // After clear() nothing of the old rows is reused.
  original.clear();
  ASSERT_TRUE(original.add(call));
  EXPECT_EQ(original.totals().begin()->second.calls, 1);
}

// A first call near the limit in one table only, a zero-cost call of another shape that
// shares only that table's row, then that shape again with a cost (the reused rows): the
// add must fail on that table's check alone and leave no trace.
void expect_refused_on_reused_rows(CallRecord near_limit, CallRecord other_shape, const char* table) {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  RollupBuilder builder(0);
  near_limit.baseline_cost = std::nullopt;
  near_limit.cost = Money{kMax - 10};
  ASSERT_TRUE(builder.add(near_limit)) << table;
  other_shape.baseline_cost = std::nullopt;
  other_shape.cost = Money{0};
  ASSERT_TRUE(builder.add(other_shape)) << table;
  const auto before = rows_of(builder);
  other_shape.cost = Money{100};
  EXPECT_FALSE(builder.add(other_shape)) << table;
  EXPECT_EQ(rows_of(builder), before) << table;
}

TEST(RollupBuilder, EachMoneyCheckOnReusedRowsRefusesOnItsOwn) {
  const CallRecord call = sample_record("first", 1'700'000'000.5, "gpt-4o");
  CallRecord same_key = call;  // another route and endpoint: only the per-key row is shared
  same_key.route = "complex";
  same_key.endpoint = "embeddings";
  expect_refused_on_reused_rows(call, same_key, "per key");
  CallRecord same_endpoint = call;  // another route and key: only the per-endpoint row is shared
  same_endpoint.route = "complex";
  same_endpoint.client_key_id = "another-key";
  expect_refused_on_reused_rows(call, same_endpoint, "per endpoint");
}

TEST(RollupBuilder, ABaselineOverflowOnReusedRowsIsRefused) {
  RollupBuilder builder(0);
  CallRecord call = sample_record("first", 1'700'000'000.5, "gpt-4o");
  call.cost = std::nullopt;
  call.baseline_cost = Money{std::numeric_limits<std::int64_t>::max() - 10};
  ASSERT_TRUE(builder.add(call));
  const auto before = rows_of(builder);
  call.baseline_cost = Money{100};
  EXPECT_FALSE(builder.add(call));
  EXPECT_EQ(rows_of(builder), before);
}

TEST(RollupBuilder, AMovedFromBuilderNeverWritesIntoTheRowsOfTheOneMovedTo) {
  RollupBuilder source(0);
  const CallRecord call = sample_record("one", 1'700'000'000.5, "gpt-4o");
  ASSERT_TRUE(source.add(call));
  RollupBuilder target(std::move(source));
  const auto before = rows_of(target);
  ASSERT_TRUE(source.add(call));  // NOLINT(bugprone-use-after-move): a moved-from builder is reusable
  EXPECT_EQ(rows_of(target), before);
  EXPECT_EQ(source.totals().begin()->second.calls, 1);
  RollupBuilder assigned(0);
  assigned = std::move(target);
  ASSERT_TRUE(target.add(call));  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(rows_of(assigned), before);
}

}  // namespace
