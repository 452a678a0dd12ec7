// What a reload applies and what it reports (plan_reload), and how a config snapshot is
// published and taken (build_snapshot, SnapshotSlot, SnapshotCache).
#include "server/config_reload.hpp"
#include "server/config_snapshot.hpp"
#include "server/reload.hpp"

#include "built_in_config.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace turnout::server {
namespace {

// POST /admin/v1/reload names the key path of a refused config in `param`.
TEST(ConfigErrorKeyPath, IsTheKeyPathAfterTheFilePosition) {
  EXPECT_EQ(config_error_key_path("/etc/turnout.yaml:7:5: routing.tiers[1].below: must be 1-100000000"),
            "routing.tiers[1].below");
  EXPECT_EQ(config_error_key_path("turnout.yaml: routing.embedding_aliases.auto: `x` is not ..."),
            "routing.embedding_aliases.auto");
  auto refused = config::parse_config("routing: {tiers: [{name: a, below: -5, model: gpt-4o}]}\n", "t.yaml",
                                      [](std::string_view) -> std::optional<std::string> { return std::nullopt; });
  ASSERT_FALSE(refused);
  EXPECT_EQ(config_error_key_path(refused.error().message), "routing.tiers[0].below") << refused.error().message;
  EXPECT_EQ(config_error_key_path("config file /x.yaml does not exist"), "");
  EXPECT_EQ(config_error_key_path("t.yaml:1:10: YAML error: end of map not found"), "");
}

TEST(PlanReload, AnUnchangedConfigChangesNothing) {
  const auto running = test::built_in_config();
  const ReloadPlan plan = plan_reload(running, running);
  EXPECT_TRUE(plan.changed.empty());
  EXPECT_TRUE(plan.restart_required.empty());
}

TEST(PlanReload, PricesTiersProvidersAndKeysApply) {
  const auto running = test::built_in_config();
  auto next = running;
  next.models.begin()->second.rates.input_pico_per_token = 123;
  next.routing.tiers.front().model = next.routing.tiers.back().model;
  next.providers.begin()->second.timeout_s = 5;
  next.server.api_keys = {"tk-new"};
  const ReloadPlan plan = plan_reload(running, next);
  EXPECT_EQ(plan.changed, (std::vector<std::string>{"providers", "models", "routing", "server.api_keys"}));
  EXPECT_TRUE(plan.restart_required.empty());
  EXPECT_EQ(plan.effective.models.begin()->second.rates.input_pico_per_token, 123);
  EXPECT_EQ(plan.effective.routing.tiers.front().model, next.routing.tiers.back().model);
  EXPECT_EQ(plan.effective.providers.begin()->second.timeout_s, 5);
  EXPECT_EQ(plan.effective.server.api_keys, std::vector<std::string>{"tk-new"});
}

TEST(PlanReload, ListenerAndLedgerChangesAreReportedAndKeptAsRunning) {
  const auto running = test::built_in_config();
  auto next = running;
  next.server.host = "0.0.0.0";
  next.server.port = 9999;
  next.server.threads = 7;
  next.ledger.url = "postgresql://elsewhere/db";
  next.ledger.spool_max_records = 5;
  next.ledger.journal = false;
  const ReloadPlan plan = plan_reload(running, next);
  EXPECT_EQ(plan.restart_required, (std::vector<std::string>{"server.host", "server.port", "server.threads",
                                                             "ledger.url", "ledger.spool_max_records",
                                                             "ledger.journal"}));
  EXPECT_TRUE(plan.changed.empty());
  EXPECT_EQ(plan.effective.server, running.server);
  EXPECT_EQ(plan.effective.ledger, running.ledger);
}

TEST(PlanReload, GovernanceChangesAreReportedAndKeptAsRunning) {
  const auto running = test::built_in_config();
  auto next = running;
  next.governance.admin_key = "a-new-admin-key";
  next.governance.allow_unpriced = !running.governance.allow_unpriced;
  next.governance.key_cache_ttl_s = running.governance.key_cache_ttl_s + 5;
  const ReloadPlan plan = plan_reload(running, next);
  EXPECT_EQ(plan.restart_required, (std::vector<std::string>{"governance.admin_key", "governance.allow_unpriced",
                                                             "governance.key_cache_ttl_s"}));
  EXPECT_TRUE(plan.changed.empty());
  EXPECT_EQ(plan.effective.governance.admin_key, running.governance.admin_key);
  EXPECT_EQ(plan.effective.governance.allow_unpriced, running.governance.allow_unpriced);
  EXPECT_EQ(plan.effective.governance.key_cache_ttl_s, running.governance.key_cache_ttl_s);
}

TEST(ConfigSnapshot, ABadBaseUrlIsRefusedWithItsKeyPath) {
  auto config = test::built_in_config();
  config.providers.begin()->second.base_url = "ftp://nowhere";
  auto built = build_snapshot(config, "secret", nullptr);
  ASSERT_FALSE(built);
  EXPECT_NE(built.error().message.find("providers." + config.providers.begin()->first + ".base_url"),
            std::string::npos)
      << built.error().message;
}

TEST(ConfigSnapshot, CooldownStateCarriesOverOnlyWhenModelsAndPolicyAreUnchanged) {
  auto config = test::built_in_config();
  auto first = build_snapshot(config, "secret", nullptr);
  ASSERT_TRUE(first);
  auto priced_differently = config;
  priced_differently.models.begin()->second.rates.output_pico_per_token = 1;
  auto second = build_snapshot(priced_differently, "secret", first->get());
  ASSERT_TRUE(second);
  EXPECT_EQ((*second)->cooldowns, (*first)->cooldowns);

  auto fewer_models = config;
  fewer_models.models.erase(std::prev(fewer_models.models.end()));
  auto third = build_snapshot(fewer_models, "secret", second->get());
  ASSERT_TRUE(third);
  EXPECT_NE((*third)->cooldowns, (*second)->cooldowns);
}

// A provider's key and headers are written into its endpoint once, when the snapshot is
// built, so a reload that rotates the key must build them again. A provider header that
// names a per-call field (x-request-id) leaves the endpoint on the per-call path.
TEST(ConfigSnapshot, EachProviderEndpointHoldsItsKeyAndHeadersAsFixedFields) {
  auto config = test::built_in_config();
  ASSERT_FALSE(config.providers.empty());
  auto copy = config.providers.begin()->second;
  copy.name = "second";
  config.providers.emplace("second", std::move(copy));
  auto& first = *config.providers.begin();
  auto& second = *config.providers.find("second");
  first.second.api_key = "sk-first-key";
  first.second.headers = {{"x-team", "blue"}};
  second.second.api_key = "sk-second-key";
  second.second.headers = {{"X-Request-Id", "fixed"}};
  auto built = build_snapshot(config, "secret", nullptr);
  ASSERT_TRUE(built);
  const auto& fixed = (*built)->upstream_endpoints.at(first.first).fixed_fields;
  ASSERT_TRUE(fixed);
  EXPECT_NE(fixed->find("sk-first-key"), std::string::npos);
  EXPECT_NE(fixed->find("x-team: blue\r\n"), std::string::npos);
  EXPECT_FALSE((*built)->upstream_endpoints.at(second.first).fixed_fields);

  first.second.api_key = "sk-rotated-key";
  auto rotated = build_snapshot(config, "secret", built->get());
  ASSERT_TRUE(rotated);
  const auto& rotated_fixed = (*rotated)->upstream_endpoints.at(first.first).fixed_fields;
  ASSERT_TRUE(rotated_fixed);
  EXPECT_NE(rotated_fixed->find("sk-rotated-key"), std::string::npos);
  EXPECT_EQ(rotated_fixed->find("sk-first-key"), std::string::npos);
}

TEST(SnapshotCache, KeepsItsSnapshotUntilAPublishThenTakesTheNewOne) {
  auto config = test::built_in_config();
  auto first = build_snapshot(config, "secret", nullptr);
  ASSERT_TRUE(first);
  SnapshotSlot slot(*first);
  SnapshotCache cache;
  const std::shared_ptr<const ConfigSnapshot> held = cache.current(slot);  // what a call keeps
  EXPECT_EQ(held.get(), first->get());
  EXPECT_EQ(cache.current(slot).get(), first->get());

  config.server.api_keys = {"tk-after"};
  auto second = build_snapshot(config, "secret", first->get());
  ASSERT_TRUE(second);
  const ConfigSnapshot* published = second->get();
  slot.publish(std::move(*second));
  EXPECT_EQ(cache.current(slot).get(), published);
  EXPECT_TRUE(held->config.server.api_keys.empty()) << "a call's snapshot never changes under it";
  EXPECT_TRUE(published->client_keys.required());
}

}  // namespace
}  // namespace turnout::server
