// Configuration: the defaults equal docs/REFERENCE.md §3.2, a file overrides them key by key (maps
// and lists named in docs/REFERENCE.md §3.1 replace whole), ${VAR} substitution, and one test per error path.
#include "config/config.hpp"
#include "config/env_substitution.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace turnout::config {
namespace {

using Vars = std::map<std::string, std::string, std::less<>>;

EnvLookup env_of(Vars vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

Config parse_ok(std::string_view yaml, Vars vars = {}) {
  auto config = parse_config(yaml, "test.yaml", env_of(std::move(vars)));
  EXPECT_TRUE(config) << (config ? "" : config.error().message);
  return config ? *config : Config{};
}

// The whole error text; the test fails if the YAML was accepted.
std::string parse_error(std::string_view yaml, Vars vars = {}) {
  auto config = parse_config(yaml, "test.yaml", env_of(std::move(vars)));
  EXPECT_FALSE(config) << "accepted:\n" << yaml;
  return config ? std::string() : config.error().message;
}

#define EXPECT_CONTAINS(text, part) EXPECT_NE((text).find(part), std::string::npos) << "in: " << (text)
#define EXPECT_LACKS(text, part) EXPECT_EQ((text).find(part), std::string::npos) << "in: " << (text)

std::int64_t price(std::string_view text) { return pricing::parse_price_per_1k(text).value(); }

// ---- defaults -------------------------------------------------------------------------

TEST(ConfigDefaults, EqualSpecSectionThree) {
  auto loaded = default_config(env_of({}));
  ASSERT_TRUE(loaded) << loaded.error().message;
  const Config& config = *loaded;
  EXPECT_EQ(config.source, "built-in defaults");

  EXPECT_EQ(config.server.host, "127.0.0.1");
  EXPECT_EQ(config.server.port, 8000);
  EXPECT_TRUE(config.server.api_keys.empty());
  EXPECT_EQ(config.server.max_body_bytes, 16777216u);
  EXPECT_EQ(config.server.shutdown_grace_s, 30);
  EXPECT_EQ(config.ledger.url, "sqlite:turnout.db");
  EXPECT_EQ(config.ledger.retention_days, 0u);  // keep every record

  ASSERT_EQ(config.providers.size(), 1u);
  const ProviderConfig& openai = config.providers.at("openai");
  EXPECT_EQ(openai.name, "openai");
  EXPECT_EQ(openai.type, ProviderType::openai);
  EXPECT_EQ(openai.base_url, "https://api.openai.com/v1");
  EXPECT_EQ(openai.api_key, "");  // ${OPENAI_API_KEY:-} with the variable unset
  EXPECT_EQ(openai.timeout_s, 600);

  struct ExpectedModel {
    std::string_view name, input, output;
    std::uint64_t context_window;
  };
  ASSERT_EQ(config.models.size(), 3u);
  for (const ExpectedModel& e : {ExpectedModel{"gpt-3.5-turbo", "0.0005", "0.0015", 16385},
                                 ExpectedModel{"gpt-4o-mini", "0.00015", "0.0006", 128000},
                                 ExpectedModel{"gpt-4o", "0.0025", "0.01", 128000}}) {
    const ModelConfig* model = config.find_model(e.name);
    ASSERT_NE(model, nullptr) << e.name;
    EXPECT_EQ(model->provider, "openai");
    EXPECT_EQ(model->upstream_name, e.name);
    EXPECT_EQ(model->rates.input_pico_per_token, price(e.input)) << e.name;
    EXPECT_EQ(model->rates.output_pico_per_token, price(e.output)) << e.name;
    EXPECT_EQ(model->context_window, e.context_window) << e.name;
    EXPECT_FALSE(model->max_output_tokens);
  }
  EXPECT_EQ(config.find_model("gpt-4o")->encoding, tokenizer::EncodingId::o200k_base);
  EXPECT_EQ(config.find_model("gpt-3.5-turbo")->encoding, tokenizer::EncodingId::cl100k_base);

  const RoutingConfig& routing = config.routing;
  EXPECT_EQ(routing.aliases, std::vector<std::string>{"auto"});
  EXPECT_EQ(routing.encoding, tokenizer::EncodingId::cl100k_base);
  ASSERT_EQ(routing.tiers.size(), 3u);
  EXPECT_EQ(routing.tiers[0].name, "simple");
  EXPECT_EQ(routing.tiers[0].below, 1000u);
  EXPECT_EQ(routing.tiers[0].model, "gpt-3.5-turbo");
  EXPECT_EQ(routing.tiers[1].name, "medium");
  EXPECT_EQ(routing.tiers[1].below, 4000u);
  EXPECT_EQ(routing.tiers[1].model, "gpt-4o-mini");
  EXPECT_EQ(routing.tiers[2].name, "complex");
  EXPECT_FALSE(routing.tiers[2].below);
  EXPECT_EQ(routing.tiers[2].model, "gpt-4o");
  EXPECT_EQ(routing.baseline_model, "gpt-4o");
  EXPECT_TRUE(routing.allow_unknown_models);
  EXPECT_TRUE(routing.fallbacks.empty());
  EXPECT_EQ(routing.retries, 2u);
  EXPECT_EQ(routing.default_image_tokens, 765u);
  EXPECT_EQ(routing.retry_backoff_ms, 200u);
  EXPECT_EQ(routing.max_retry_wait_s, 20);
}

TEST(ConfigDefaults, ApiKeyComesFromTheEnvironment) {
  auto config = default_config(env_of({{"OPENAI_API_KEY", "sk-test"}}));
  ASSERT_TRUE(config);
  EXPECT_EQ(config->providers.at("openai").api_key, "sk-test");
}

TEST(ConfigDefaults, AnEmptyFileKeepsEveryDefault) {
  for (std::string_view empty : {"", "# nothing here\n", "---\n"}) {
    const Config config = parse_ok(empty);
    EXPECT_EQ(config.models.size(), 3u);
    EXPECT_EQ(config.routing.tiers.size(), 3u);
    EXPECT_EQ(config.server.port, 8000);
    EXPECT_EQ(config.source, "test.yaml");
  }
}

TEST(ConfigDefaults, ExampleFileEqualsTheDefaults) {
  const std::filesystem::path example = std::filesystem::path(TURNOUT_SOURCE_DIR) / "examples" / "turnout.yaml";
  auto from_file = load_config(example, env_of({}));
  ASSERT_TRUE(from_file) << from_file.error().message;
  auto defaults = default_config(env_of({}));
  ASSERT_TRUE(defaults);
  EXPECT_EQ(from_file->server.host, defaults->server.host);
  EXPECT_EQ(from_file->server.port, defaults->server.port);
  EXPECT_EQ(from_file->server.max_body_bytes, defaults->server.max_body_bytes);
  EXPECT_EQ(from_file->server.shutdown_grace_s, defaults->server.shutdown_grace_s);
  EXPECT_EQ(from_file->ledger.url, defaults->ledger.url);
  EXPECT_EQ(from_file->providers.at("openai").base_url, defaults->providers.at("openai").base_url);
  ASSERT_EQ(from_file->models.size(), defaults->models.size());
  for (const auto& [name, model] : defaults->models) {
    const ModelConfig* other = from_file->find_model(name);
    ASSERT_NE(other, nullptr) << name;
    EXPECT_EQ(other->rates.input_pico_per_token, model.rates.input_pico_per_token) << name;
    EXPECT_EQ(other->rates.output_pico_per_token, model.rates.output_pico_per_token) << name;
    EXPECT_EQ(other->context_window, model.context_window) << name;
  }
  ASSERT_EQ(from_file->routing.tiers.size(), defaults->routing.tiers.size());
  for (std::size_t i = 0; i < defaults->routing.tiers.size(); ++i) {
    EXPECT_EQ(from_file->routing.tiers[i].name, defaults->routing.tiers[i].name);
    EXPECT_EQ(from_file->routing.tiers[i].below, defaults->routing.tiers[i].below);
    EXPECT_EQ(from_file->routing.tiers[i].model, defaults->routing.tiers[i].model);
  }
  EXPECT_EQ(from_file->routing.aliases, defaults->routing.aliases);
  EXPECT_EQ(from_file->routing.baseline_model, defaults->routing.baseline_model);
  EXPECT_EQ(from_file->routing.retries, defaults->routing.retries);
  EXPECT_EQ(from_file->routing.default_image_tokens, defaults->routing.default_image_tokens);
  EXPECT_EQ(from_file->routing.retry_backoff_ms, defaults->routing.retry_backoff_ms);
  EXPECT_EQ(from_file->routing.max_retry_wait_s, defaults->routing.max_retry_wait_s);
}

// ---- override semantics ---------------------------------------------------------------

TEST(ConfigOverride, ScalarsOverrideKeyByKey) {
  const Config config = parse_ok("server:\n  port: 9000\nrouting:\n  retries: 5\n");
  EXPECT_EQ(config.server.port, 9000);
  EXPECT_EQ(config.server.host, "127.0.0.1");
  EXPECT_EQ(config.server.max_body_bytes, 16777216u);
  EXPECT_EQ(config.routing.retries, 5u);
  EXPECT_EQ(config.routing.tiers.size(), 3u);
  EXPECT_EQ(config.routing.aliases, std::vector<std::string>{"auto"});
  EXPECT_EQ(config.models.size(), 3u);
}

TEST(ConfigOverride, ModelsReplaceTheDefaultModelsWhole) {
  const Config config = parse_ok(R"(
models:
  gpt-4o: {provider: openai, input_cost_per_1k: 0.003, output_cost_per_1k: 0.012, context_window: 128000}
routing:
  tiers: [{name: only, model: gpt-4o}]
)");
  ASSERT_EQ(config.models.size(), 1u);
  EXPECT_EQ(config.find_model("gpt-3.5-turbo"), nullptr);
  EXPECT_EQ(config.find_model("gpt-4o")->rates.input_pico_per_token, price("0.003"));
  ASSERT_EQ(config.routing.tiers.size(), 1u);
  EXPECT_EQ(config.routing.tiers[0].name, "only");
}

TEST(ConfigOverride, ProvidersReplaceTheDefaultProvidersWhole) {
  const Config config = parse_ok(R"(
providers:
  local: {base_url: "http://127.0.0.1:9000/v1/"}
models:
  gpt-4o: {provider: local, input_cost_per_1k: 0.0025, output_cost_per_1k: 0.01, context_window: 128000}
routing:
  tiers: [{name: all, model: gpt-4o}]
)");
  ASSERT_EQ(config.providers.size(), 1u);
  EXPECT_EQ(config.find_provider("openai"), nullptr);
  EXPECT_EQ(config.find_provider("local")->base_url, "http://127.0.0.1:9000/v1");  // trailing / dropped
  EXPECT_EQ(config.find_provider("local")->api_key, "");
  EXPECT_EQ(config.default_provider(), config.find_provider("local"));
}

TEST(ConfigOverride, ListsAndMapsInRoutingAndServerReplaceWhole) {
  const Config config = parse_ok(R"(
server:
  api_keys: [key-one, key-two]
routing:
  aliases: [smart]
  tiers:
    - {name: small, below: 500, model: gpt-4o-mini}
    - {name: large, model: gpt-4o}
  fallbacks: {gpt-4o-mini: [gpt-4o]}
)");
  EXPECT_EQ(config.server.api_keys, (std::vector<std::string>{"key-one", "key-two"}));
  EXPECT_EQ(config.routing.aliases, std::vector<std::string>{"smart"});
  ASSERT_EQ(config.routing.tiers.size(), 2u);
  EXPECT_EQ(config.routing.tiers[0].below, 500u);
  ASSERT_EQ(config.routing.fallbacks.size(), 1u);
  EXPECT_EQ(config.routing.fallbacks.at("gpt-4o-mini"), std::vector<std::string>{"gpt-4o"});
  EXPECT_EQ(config.models.size(), 3u);  // untouched sections keep their defaults
}

TEST(ConfigOverride, ReplacedModelsWithDefaultTiersIsExplained) {
  const std::string error = parse_error(R"(
models:
  my-model: {provider: openai, input_cost_per_1k: 0.001, output_cost_per_1k: 0.002, context_window: 8000}
)");
  EXPECT_CONTAINS(error, "test.yaml: routing.tiers[0].model: `gpt-3.5-turbo` is not a configured model");
  EXPECT_CONTAINS(error, "built-in default");
  EXPECT_CONTAINS(error, "routing.baseline_model");
}

// ---- models ---------------------------------------------------------------------------

TEST(ConfigModels, PricesAreReadAsExactText) {
  const Config config = parse_ok(R"(
models:
  m: {provider: openai, input_cost_per_1k: 0.00015, output_cost_per_1k: "0.0006",
      cached_input_cost_per_1k: 0.000075, context_window: 1000, max_output_tokens: 500}
routing: {tiers: [{name: t, model: m}], baseline_model: m}
)");
  const ModelConfig& model = *config.find_model("m");
  EXPECT_EQ(model.rates.input_pico_per_token, 150'000);
  EXPECT_EQ(model.rates.output_pico_per_token, 600'000);
  EXPECT_EQ(model.rates.cached_input_pico_per_token, 75'000);
  EXPECT_EQ(model.max_output_tokens, 500u);
}

TEST(ConfigModels, UpstreamNameDefaultsToTheNameAndPicksTheEncoding) {
  const Config config = parse_ok(R"(
models:
  fast: {provider: openai, upstream_name: gpt-4o, input_cost_per_1k: 0.0025, output_cost_per_1k: 0.01, context_window: 128000}
  gpt-3.5-turbo: {provider: openai, input_cost_per_1k: 0.0005, output_cost_per_1k: 0.0015, context_window: 16385}
  local-llama: {provider: openai, input_cost_per_1k: 0, output_cost_per_1k: 0, context_window: 8192}
routing:
  encoding: o200k_base
  tiers: [{name: t, model: fast}]
  baseline_model: fast
)");
  EXPECT_EQ(config.find_model("fast")->upstream_name, "gpt-4o");
  EXPECT_EQ(config.find_model("fast")->encoding, tokenizer::EncodingId::o200k_base);
  EXPECT_EQ(config.find_model("gpt-3.5-turbo")->upstream_name, "gpt-3.5-turbo");
  EXPECT_EQ(config.find_model("gpt-3.5-turbo")->encoding, tokenizer::EncodingId::cl100k_base);
  // Unknown to tiktoken: the routing encoding.
  EXPECT_EQ(config.find_model("local-llama")->encoding, tokenizer::EncodingId::o200k_base);
}

TEST(ConfigModels, MissingPricesAndWindowComeFromTheBuiltinTable) {
  const Config config = parse_ok(R"(
models:
  gpt-4.1: {provider: openai}
  house-model: {provider: openai, context_window: 4096}
routing: {tiers: [{name: t, model: gpt-4.1}], baseline_model: gpt-4.1}
)");
  const ModelConfig& builtin = *config.find_model("gpt-4.1");
  EXPECT_EQ(builtin.rates.input_pico_per_token, price("0.002"));
  EXPECT_EQ(builtin.rates.cached_input_pico_per_token, price("0.0005"));
  EXPECT_EQ(builtin.context_window, 1'047'576u);
  EXPECT_FALSE(config.find_model("house-model")->rates.priced());  // unpriced, never $0
}

// ---- providers ------------------------------------------------------------------------

TEST(ConfigProviders, AzureProviderWithHeadersAndVersion) {
  const Config config = parse_ok(R"(
providers:
  openai: {base_url: "https://api.openai.com/v1", api_key: "${OPENAI_API_KEY}"}
  azure:
    type: azure
    base_url: https://example.openai.azure.com/openai/deployments/gpt4o
    api_version: 2024-10-21
    headers: {api-key: "${AZURE_KEY}", X-Team: search}
    timeout_s: 30
    connect_timeout_s: 2.5
)",
                                 {{"OPENAI_API_KEY", "sk-1"}, {"AZURE_KEY", "az-2"}});
  const ProviderConfig& azure = config.providers.at("azure");
  EXPECT_EQ(azure.type, ProviderType::azure);
  EXPECT_EQ(azure.api_version, "2024-10-21");
  EXPECT_EQ(azure.timeout_s, 30);
  EXPECT_EQ(azure.connect_timeout_s, 2.5);
  const std::vector<std::pair<std::string, std::string>> headers{{"api-key", "az-2"}, {"X-Team", "search"}};
  EXPECT_EQ(azure.headers, headers);
  EXPECT_EQ(config.providers.at("openai").api_key, "sk-1");
  EXPECT_EQ(config.default_provider()->name, "openai");
}

TEST(ConfigProviders, FirstByteTimeoutIsOptionalAndZeroMeansNoSeparateLimit) {
  EXPECT_EQ(parse_ok("").providers.at("openai").first_byte_timeout_s, 0);
  const Config config = parse_ok("providers: {openai: {base_url: \"http://x\", first_byte_timeout_s: 1.5}}\n");
  EXPECT_EQ(config.providers.at("openai").first_byte_timeout_s, 1.5);
  EXPECT_EQ(parse_ok("providers: {openai: {base_url: \"http://x\", first_byte_timeout_s: 0}}\n")
                .providers.at("openai")
                .first_byte_timeout_s,
            0);
  EXPECT_CONTAINS(parse_error("providers: {openai: {base_url: \"http://x\", first_byte_timeout_s: -1}}\n"),
                  "providers.openai.first_byte_timeout_s: must not be negative");
}

// ---- cooldown -------------------------------------------------------------------------

TEST(ConfigCooldown, DefaultsAreFiveFailuresInThirtySecondsForSixtySeconds) {
  const CooldownConfig cooldown = parse_ok("").routing.cooldown;
  EXPECT_EQ(cooldown.failures, 5u);
  EXPECT_EQ(cooldown.window_s, 30);
  EXPECT_EQ(cooldown.duration_s, 60);
}

TEST(ConfigCooldown, OverridesKeyByKeyAndZeroFailuresDisables) {
  const CooldownConfig cooldown = parse_ok("routing: {cooldown: {failures: 3, duration_s: 2.5}}\n").routing.cooldown;
  EXPECT_EQ(cooldown.failures, 3u);
  EXPECT_EQ(cooldown.window_s, 30) << "keys not given keep their default";
  EXPECT_EQ(cooldown.duration_s, 2.5);
  EXPECT_EQ(parse_ok("routing: {cooldown: {failures: 0}}\n").routing.cooldown.failures, 0u);
}

TEST(ConfigCooldown, InvalidValuesNameTheirKeyPath) {
  EXPECT_CONTAINS(parse_error("routing: {cooldown: {failures: -1}}\n"), "routing.cooldown.failures: must not be negative");
  EXPECT_CONTAINS(parse_error("routing: {cooldown: {failures: 1001}}\n"), "routing.cooldown.failures: must be at most 1000");
  EXPECT_CONTAINS(parse_error("routing: {cooldown: {window_s: 0}}\n"), "routing.cooldown.window_s: must be greater than 0");
  EXPECT_CONTAINS(parse_error("routing: {cooldown: {duration_s: soon}}\n"),
                  "routing.cooldown.duration_s: expected a number of seconds");
  EXPECT_CONTAINS(parse_error("routing: {cooldown: {failure: 3}}\n"), "routing.cooldown.failure: unknown key");
  EXPECT_CONTAINS(parse_error("routing: {cooldown: 5}\n"), "routing.cooldown: expected a map");
}

// ---- example configurations -------------------------------------------------------------

// Each examples/*.yaml must load with the environment variables it documents.
class ExampleConfigs : public ::testing::TestWithParam<const char*> {};

TEST_P(ExampleConfigs, LoadWithTheirDocumentedEnvironment) {
  const std::filesystem::path file = std::filesystem::path(TURNOUT_SOURCE_DIR) / "examples" / GetParam();
  const Vars env{{"OPENAI_API_KEY", "sk-example"},
                 {"AZURE_OPENAI_API_KEY", "az-example"},
                 {"AZURE_OPENAI_ENDPOINT", "https://example-resource.openai.azure.com"},
                 {"TURNOUT_API_KEY", "tk-example"}};
  auto config = load_config(file, env_of(env));
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_FALSE(config->providers.empty());
  for (const auto& tier : config->routing.tiers) EXPECT_NE(config->find_model(tier.model), nullptr) << tier.model;
}

INSTANTIATE_TEST_SUITE_P(Examples, ExampleConfigs,
                         ::testing::Values("turnout.yaml", "openai.yaml", "azure.yaml", "local-vllm-ollama.yaml"));

TEST(ExampleConfigs, AzureExampleBuildsDeploymentRequests) {
  const std::filesystem::path file = std::filesystem::path(TURNOUT_SOURCE_DIR) / "examples" / "azure.yaml";
  auto config = load_config(file, env_of({{"AZURE_OPENAI_API_KEY", "az-example"},
                                          {"AZURE_OPENAI_ENDPOINT", "https://example-resource.openai.azure.com"}}));
  ASSERT_TRUE(config) << config.error().message;
  const ProviderConfig& azure = config->providers.at("azure");
  EXPECT_EQ(azure.type, ProviderType::azure);
  EXPECT_EQ(azure.base_url, "https://example-resource.openai.azure.com");
  EXPECT_EQ(azure.api_key, "az-example");
  EXPECT_FALSE(azure.api_version.empty());
}

// ---- environment substitution ---------------------------------------------------------

TEST(ConfigEnv, VariablesDefaultsAndMixedText) {
  const Config config = parse_ok(R"(
server:
  host: "${HOST}"
  port: ${PORT:-9100}
ledger:
  url: "sqlite:${DATA_DIR:-/var/lib}/turnout.db"
)",
                                 {{"HOST", "0.0.0.0"}});
  EXPECT_EQ(config.server.host, "0.0.0.0");
  EXPECT_EQ(config.server.port, 9100);
  EXPECT_EQ(config.ledger.url, "sqlite:/var/lib/turnout.db");
}

TEST(ConfigLedger, SpoolPathAndBound) {
  const Config defaults = parse_ok("");
  EXPECT_EQ(defaults.ledger.spool_path, "turnout-spool.db");
  EXPECT_EQ(defaults.ledger.spool_max_records, 1'000'000u);
  const Config set = parse_ok("ledger: {spool_path: /var/spool/turnout.db, spool_max_records: 5000}\n");
  EXPECT_EQ(set.ledger.spool_path, "/var/spool/turnout.db");
  EXPECT_EQ(set.ledger.spool_max_records, 5000u);
  EXPECT_EQ(parse_ok("ledger: {spool_path: \"\"}\n").ledger.spool_path, "") << "\"\" turns the spool off";
  EXPECT_CONTAINS(parse_error("ledger: {spool_max_records: 0}\n"), "ledger.spool_max_records");
  EXPECT_CONTAINS(parse_error("ledger: {url: \"sqlite:same.db\", spool_path: same.db}\n"),
                  "ledger.spool_path: must not be the ledger database itself");
}

TEST(ConfigLedger, JournalIsABooleanOnByDefault) {
  EXPECT_TRUE(parse_ok("").ledger.journal);
  EXPECT_FALSE(parse_ok("ledger: {journal: false}\n").ledger.journal);
  EXPECT_TRUE(parse_ok("ledger: {journal: true}\n").ledger.journal);
  EXPECT_CONTAINS(parse_error("ledger: {journal: sometimes}\n"), "ledger.journal");
  EXPECT_CONTAINS(parse_error("ledger: {journal: 1}\n"), "ledger.journal");
}

TEST(ConfigLedger, RetentionDaysIsAWholeNumberOfDays) {
  EXPECT_EQ(parse_ok("ledger: {retention_days: 90}\n").ledger.retention_days, 90u);
  EXPECT_CONTAINS(parse_error("ledger: {retention_days: -1}\n"), "ledger.retention_days");
  EXPECT_CONTAINS(parse_error("ledger: {retention_days: 1.5}\n"), "ledger.retention_days");
  EXPECT_CONTAINS(parse_error("ledger: {retention_days: forever}\n"), "ledger.retention_days");
}

TEST(ConfigEnv, SetVariableWinsOverItsDefault) {
  const Config config = parse_ok("server: {port: \"${PORT:-9100}\"}\n", {{"PORT", "9200"}});
  EXPECT_EQ(config.server.port, 9200);
}

TEST(ConfigEnv, MissingVariableNamesTheKeyAndTheVariable) {
  const std::string error = parse_error("server:\n  host: ${TURNOUT_HOST}\n");
  EXPECT_CONTAINS(error, "test.yaml:2:9: server.host: environment variable TURNOUT_HOST is not set");
}

TEST(ConfigEnv, ValuesFromTheEnvironmentAreNeverEchoed) {
  const std::string error = parse_error("server: {port: \"${PORT}\"}\n", {{"PORT", "s3cr3t"}});
  EXPECT_CONTAINS(error, "server.port: expected a whole number");
  EXPECT_LACKS(error, "s3cr3t");
}

TEST(ConfigEnv, NamesFromTheEnvironmentAreNotEchoedInCrossChecks) {
  const std::string error = parse_error("routing: {baseline_model: \"${BASELINE}\"}\n", {{"BASELINE", "hidden-name"}});
  EXPECT_CONTAINS(error, "routing.baseline_model: the value is not a configured model");
  EXPECT_LACKS(error, "hidden-name");
}

TEST(ConfigEnv, SecretsAreNeverEchoedEvenWhenWrittenInline) {
  const std::string ledger_error = parse_error("ledger: {url: \"mysql://root:hunter2@db/x\"}\n");
  EXPECT_CONTAINS(ledger_error, "ledger.url: expected sqlite:PATH");
  EXPECT_LACKS(ledger_error, "hunter2");
  const std::string key_error = parse_error(R"(
providers:
  openai: {base_url: "https://api.openai.com/v1", api_key: "sk-live-123", headers: {"api-key": "line1\nline2"}}
)");
  EXPECT_CONTAINS(key_error, "providers.openai.headers.api-key: a header value cannot contain a line break");
  EXPECT_LACKS(key_error, "sk-live-123");
  EXPECT_LACKS(key_error, "line1");
}

// Provider header values and the key go into the upstream request head as text: a line
// break would inject a header, so they are refused where they enter, without echoing them.
TEST(ConfigEnv, KeyOrHeaderValueThatWouldBreakTheRequestHeadIsRefused) {
  const std::string key_error = parse_error(R"(
providers:
  openai: {base_url: "https://api.openai.com/v1", api_key: "sk-live-123\r\nX-Injected: 1"}
)");
  EXPECT_CONTAINS(key_error, "providers.openai.api_key: the key cannot contain a line break or a NUL byte");
  EXPECT_LACKS(key_error, "sk-live-123");
  EXPECT_LACKS(key_error, "X-Injected");
  const std::string newline_error =
      parse_error("providers: {openai: {base_url: \"https://x\", api_key: \"sk-live-123\\n\"}}\n");
  EXPECT_CONTAINS(newline_error, "providers.openai.api_key: the key cannot contain a line break");
  EXPECT_LACKS(newline_error, "sk-live-123");
  const std::string nul_error = parse_error(R"(
providers:
  openai: {base_url: "https://api.openai.com/v1", headers: {X-Team: "a\0b"}}
)");
  EXPECT_CONTAINS(nul_error, "providers.openai.headers.X-Team: a header value cannot contain a line break or a NUL byte");
}

TEST(EnvSubstitution, Rules) {
  const EnvLookup env = env_of({{"A", "1"}, {"EMPTY", ""}});
  EXPECT_EQ(substitute_env("x${A}y${A}", env)->text, "x1y1");
  EXPECT_EQ(substitute_env("${EMPTY}", env)->text, "");             // set but empty
  EXPECT_EQ(substitute_env("${EMPTY:-d}", env)->text, "d");         // :- also covers empty
  EXPECT_EQ(substitute_env("${UNSET:-}", env)->text, "");
  EXPECT_EQ(substitute_env("${UNSET:-a:-b}", env)->text, "a:-b");
  EXPECT_EQ(substitute_env("cost $5 {x}", env)->text, "cost $5 {x}");  // only ${ is special
  EXPECT_TRUE(substitute_env("${A}", env)->used_environment);
  EXPECT_FALSE(substitute_env("${UNSET:-d}", env)->used_environment);
  EXPECT_CONTAINS(substitute_env("${A", env).error().message, "unterminated");
  EXPECT_CONTAINS(substitute_env("${1A}", env).error().message, "not a valid reference");
  EXPECT_CONTAINS(substitute_env("${}", env).error().message, "not a valid reference");
  EXPECT_CONTAINS(substitute_env("${UNSET}", env).error().message, "UNSET is not set");
}

// ---- error paths: one test each ------------------------------------------------------

TEST(ConfigErrors, UnknownTopLevelKeySuggestsTheClosest) {
  EXPECT_CONTAINS(parse_error("serverr: {port: 1}\n"), "test.yaml:1:1: serverr: unknown key; did you mean `server`?");
}

TEST(ConfigErrors, UnknownKeyInASection) {
  EXPECT_CONTAINS(parse_error("server:\n  prot: 80\n"), "test.yaml:2:3: server.prot: unknown key; did you mean `port`?");
}

TEST(ConfigErrors, UnknownKeyInAProvider) {
  EXPECT_CONTAINS(parse_error("providers:\n  openai: {base_url: \"http://x\", apikey: k}\n"),
                  "providers.openai.apikey: unknown key; did you mean `api_key`?");
}

TEST(ConfigErrors, UnknownKeyInAModel) {
  const std::string error = parse_error(R"(
models:
  gpt-4o: {provider: openai, input_cost: 0.1, context_window: 10}
)");
  EXPECT_CONTAINS(error, "test.yaml:3:30: models.gpt-4o.input_cost: unknown key");
}

TEST(ConfigErrors, UnknownKeyInATier) {
  EXPECT_CONTAINS(parse_error("routing:\n  tiers:\n    - {name: a, bellow: 5, model: gpt-4o}\n    - {name: b, model: gpt-4o}\n"),
                  "routing.tiers[0].bellow: unknown key; did you mean `below`?");
}

TEST(ConfigErrors, UnrelatedUnknownKeyListsTheKnownOnes) {
  EXPECT_CONTAINS(parse_error("ledger: {path: x.db}\n"),
                  "ledger.path: unknown key (expected one of: url retention_days spool_path spool_max_records journal)");
}

TEST(ConfigErrors, WrongTypes) {
  EXPECT_CONTAINS(parse_error("server: [1, 2]\n"), "server: expected a map, got a list");
  EXPECT_CONTAINS(parse_error("server: {port: eighty}\n"), "server.port: expected a whole number (got \"eighty\")");
  EXPECT_CONTAINS(parse_error("server: {host: {a: 1}}\n"), "server.host: expected a string, got a map");
  EXPECT_CONTAINS(parse_error("routing: {tiers: {a: 1}}\n"), "routing.tiers: expected a list, got a map");
  EXPECT_CONTAINS(parse_error("routing: {allow_unknown_models: maybe}\n"),
                  "routing.allow_unknown_models: expected true or false");
  EXPECT_CONTAINS(parse_error("server: {read_timeout_s: soon}\n"), "server.read_timeout_s: expected a number of seconds");
  EXPECT_CONTAINS(parse_error("- just\n- a list\n"), "expected a map of sections");
}

TEST(ConfigErrors, NegativeAndZeroNumbers) {
  EXPECT_CONTAINS(parse_error("server: {max_body_bytes: -1}\n"), "server.max_body_bytes: must not be negative");
  EXPECT_CONTAINS(parse_error("server: {max_body_bytes: 0}\n"), "server.max_body_bytes: must be at least 1");
  EXPECT_CONTAINS(parse_error("providers: {openai: {base_url: \"http://x\", timeout_s: 0}}\n"),
                  "providers.openai.timeout_s: must be greater than 0");
  EXPECT_CONTAINS(parse_error("server: {shutdown_grace_s: -2}\n"), "server.shutdown_grace_s: must not be negative");
  EXPECT_CONTAINS(parse_error("models:\n  m: {provider: openai, context_window: 0}\n"),
                  "models.m.context_window: must be at least 1");
  EXPECT_CONTAINS(parse_error("routing: {retries: -1}\n"), "routing.retries: must not be negative");
}

TEST(ConfigErrors, PortRange) {
  EXPECT_CONTAINS(parse_error("server: {port: 65536}\n"), "server.port: must be at most 65535");
  EXPECT_EQ(parse_ok("server: {port: 0}\n").server.port, 0);  // 0: any free port
  EXPECT_EQ(parse_ok("server: {port: 65535}\n").server.port, 65535);
}

TEST(ConfigErrors, TierBelowMustIncrease) {
  const std::string error = parse_error(R"(
routing:
  tiers:
    - {name: a, below: 4000, model: gpt-3.5-turbo}
    - {name: b, below: 1000, model: gpt-4o-mini}
    - {name: c, model: gpt-4o}
)");
  EXPECT_CONTAINS(error, "test.yaml:5:24: routing.tiers[1].below: must be greater than the previous tier's below (4000)");
}

TEST(ConfigErrors, EqualTierBoundsAreRejected) {
  EXPECT_CONTAINS(parse_error("routing:\n  tiers:\n    - {name: a, below: 10, model: gpt-4o}\n"
                              "    - {name: b, below: 10, model: gpt-4o}\n    - {name: c, model: gpt-4o}\n"),
                  "routing.tiers[1].below: must be greater than the previous tier's below (10)");
}

TEST(ConfigErrors, OnlyTheLastTierMayOmitBelow) {
  EXPECT_CONTAINS(parse_error("routing:\n  tiers:\n    - {name: a, model: gpt-4o}\n    - {name: b, model: gpt-4o}\n"),
                  "routing.tiers[0].below: required: only the last tier may omit `below`");
}

TEST(ConfigErrors, TheLastTierMustNotSetBelow) {
  EXPECT_CONTAINS(parse_error("routing:\n  tiers:\n    - {name: a, below: 10, model: gpt-4o}\n"),
                  "routing.tiers[0].below: the last tier takes every prompt the earlier tiers do not");
}

TEST(ConfigErrors, TiersNeedNamesModelsAndAtLeastOneEntry) {
  EXPECT_CONTAINS(parse_error("routing: {tiers: []}\n"), "routing.tiers: at least one tier is required");
  EXPECT_CONTAINS(parse_error("routing: {tiers: [{model: gpt-4o}]}\n"), "routing.tiers[0].name: required");
  EXPECT_CONTAINS(parse_error("routing: {tiers: [{name: a}]}\n"), "routing.tiers[0].model: required");
  EXPECT_CONTAINS(parse_error("routing: {tiers: [{name: a, below: 5, model: gpt-4o}, {name: a, model: gpt-4o}]}\n"),
                  "routing.tiers[1].name: duplicate tier name `a`");
}

TEST(ConfigErrors, TierModelMustBeConfigured) {
  EXPECT_CONTAINS(parse_error("routing:\n  tiers: [{name: a, model: gpt-5}]\n"),
                  "test.yaml:2:28: routing.tiers[0].model: `gpt-5` is not a configured model");
}

TEST(ConfigErrors, FallbacksMustNameConfiguredModels) {
  EXPECT_CONTAINS(parse_error("routing: {fallbacks: {gpt-4o: [gpt-5]}}\n"),
                  "routing.fallbacks.gpt-4o[0]: `gpt-5` is not a configured model");
  EXPECT_CONTAINS(parse_error("routing: {fallbacks: {gpt-5: [gpt-4o]}}\n"),
                  "routing.fallbacks.gpt-5: `gpt-5` is not a configured model");
  EXPECT_CONTAINS(parse_error("routing: {fallbacks: {gpt-4o: [gpt-4o]}}\n"),
                  "routing.fallbacks.gpt-4o[0]: a model cannot be its own fallback");
  EXPECT_CONTAINS(parse_error("routing: {fallbacks: {gpt-4o: [gpt-4o-mini, gpt-4o-mini]}}\n"),
                  "routing.fallbacks.gpt-4o[1]: `gpt-4o-mini` is listed twice");
}

TEST(ConfigRouting, EmbeddingAliasesNameAnEmbeddingModel) {
  EXPECT_TRUE(parse_ok("routing: {}\n").routing.embedding_aliases.empty());  // none by default
  const Config config = parse_ok(
      "models:\n"
      "  gpt-4o: {provider: openai}\n"
      "  gpt-3.5-turbo: {provider: openai}\n"
      "  gpt-4o-mini: {provider: openai}\n"
      "  my-embedder: {provider: openai, upstream_name: text-embedding-3-large}\n"
      "routing:\n"
      "  embedding_aliases: {auto: text-embedding-3-small, big: my-embedder}\n");
  EXPECT_EQ(config.routing.embedding_aliases,
            (std::map<std::string, std::string, std::less<>>{{"auto", "text-embedding-3-small"}, {"big", "my-embedder"}}));
}

TEST(ConfigErrors, EmbeddingAliasesAreCheckedAtLoad) {
  EXPECT_CONTAINS(parse_error("routing: {embedding_aliases: {auto: gpt-4o}}\n"),
                  "routing.embedding_aliases.auto: `gpt-4o` is a chat model: an embedding alias needs an embedding model");
  EXPECT_CONTAINS(parse_error("routing: {embedding_aliases: {auto: no-such-embedder}}\n"),
                  "routing.embedding_aliases.auto: `no-such-embedder` is neither a configured model");
  EXPECT_CONTAINS(parse_error("routing: {allow_unknown_models: false, embedding_aliases: {e: text-embedding-3-small}}\n"),
                  "routing.embedding_aliases.e: `text-embedding-3-small` is neither a configured model");
  EXPECT_CONTAINS(parse_error("routing: {embedding_aliases: {gpt-4o: text-embedding-3-small}}\n"),
                  "routing.embedding_aliases.gpt-4o: the alias `gpt-4o` is also a configured model");
  EXPECT_CONTAINS(parse_error("routing: {embedding_aliases: {auto: ''}}\n"), "routing.embedding_aliases.auto");
  EXPECT_CONTAINS(parse_error("routing: {embedding_aliases: [auto]}\n"), "routing.embedding_aliases");
}

TEST(ConfigErrors, BaselineMustBeAConfiguredPricedModel) {
  EXPECT_CONTAINS(parse_error("routing: {baseline_model: gpt-5}\n"),
                  "routing.baseline_model: `gpt-5` is not a configured model");
  EXPECT_CONTAINS(parse_error(R"(
models:
  house: {provider: openai, context_window: 1000}
routing: {tiers: [{name: a, model: house}], baseline_model: house}
)"),
                  "routing.baseline_model: `house` has no price");
}

TEST(ConfigErrors, ModelProviderMustExist) {
  const std::string error = parse_error(R"(
models:
  gpt-4o: {provider: opnai, input_cost_per_1k: 0.0025, output_cost_per_1k: 0.01, context_window: 128000}
routing: {tiers: [{name: a, model: gpt-4o}]}
)");
  EXPECT_CONTAINS(error, "test.yaml:3:22: models.gpt-4o.provider: unknown provider `opnai`");
}

TEST(ConfigErrors, ModelNeedsAProviderAndAWindow) {
  EXPECT_CONTAINS(parse_error("models:\n  m: {context_window: 5}\n"), "models.m.provider: required");
  EXPECT_CONTAINS(parse_error("models:\n  house-model: {provider: openai}\n"),
                  "models.house-model.context_window: required: there is no built-in context window for `house-model`");
}

TEST(ConfigErrors, BadPriceText) {
  EXPECT_CONTAINS(parse_error("models:\n  m: {provider: openai, input_cost_per_1k: 2.5e-3, output_cost_per_1k: 1, context_window: 5}\n"),
                  "models.m.input_cost_per_1k: invalid price: exponents are not allowed");
  EXPECT_CONTAINS(parse_error("models:\n  m: {provider: openai, input_cost_per_1k: -1, output_cost_per_1k: 1, context_window: 5}\n"),
                  "models.m.input_cost_per_1k: invalid price: a price cannot be negative");
  EXPECT_CONTAINS(parse_error("models:\n  m: {provider: openai, input_cost_per_1k: cheap, output_cost_per_1k: 1, context_window: 5}\n"),
                  "models.m.input_cost_per_1k: invalid price: expected a plain decimal number such as 0.0025 (got \"cheap\")");
}

TEST(ConfigErrors, PricesComeInPairs) {
  EXPECT_CONTAINS(parse_error("models:\n  m: {provider: openai, input_cost_per_1k: 0.1, context_window: 5}\n"),
                  "models.m: set both input_cost_per_1k and output_cost_per_1k");
  EXPECT_CONTAINS(parse_error("models:\n  m: {provider: openai, cached_input_cost_per_1k: 0.1, context_window: 5}\n"),
                  "models.m.cached_input_cost_per_1k: set input_cost_per_1k too");
}

TEST(ConfigErrors, BadEncoding) {
  EXPECT_CONTAINS(parse_error("routing: {encoding: p50k_base}\n"),
                  "routing.encoding: expected cl100k_base or o200k_base (got \"p50k_base\")");
}

TEST(ConfigErrors, BadProviderTypeUrlAndAzureVersion) {
  EXPECT_CONTAINS(parse_error("providers: {openai: {type: anthropic, base_url: \"http://x\"}}\n"),
                  "providers.openai.type: expected openai or azure");
  EXPECT_CONTAINS(parse_error("providers: {openai: {base_url: \"ftp://x\"}}\n"),
                  "providers.openai.base_url: expected an http:// or https:// URL");
  EXPECT_CONTAINS(parse_error("providers: {openai: {base_url: \"https://\"}}\n"),
                  "providers.openai.base_url: expected an http:// or https:// URL");
  EXPECT_CONTAINS(parse_error("providers: {openai: {api_key: k}}\n"), "providers.openai.base_url: required");
  EXPECT_CONTAINS(parse_error("providers: {openai: {type: azure, base_url: \"https://x\"}}\n"),
                  "providers.openai.api_version: required when type is azure");
  EXPECT_CONTAINS(parse_error("providers: {}\n"), "providers: at least one provider is required");
}

TEST(ConfigErrors, BadHeaderName) {
  EXPECT_CONTAINS(parse_error("providers: {openai: {base_url: \"https://x\", headers: {\"bad header\": v}}}\n"),
                  "providers.openai.headers.bad header: not a valid HTTP header name");
}

TEST(ConfigErrors, AliasThatIsAlsoAModel) {
  EXPECT_CONTAINS(parse_error("routing: {aliases: [auto, gpt-4o]}\n"),
                  "routing.aliases[1]: `gpt-4o` is also a configured model");
}

TEST(ConfigErrors, BadLedgerUrl) {
  EXPECT_CONTAINS(parse_error("ledger: {url: \"turnout.db\"}\n"), "ledger.url: expected sqlite:PATH");
}

TEST(ConfigErrors, InvalidYamlSyntaxHasALocation) {
  EXPECT_CONTAINS(parse_error("server:\n  port: [8000\n"), "test.yaml:3:1: invalid YAML");
}

TEST(ConfigErrors, EveryProblemIsReportedAtOnce) {
  const std::string error = parse_error("server: {port: -1, hots: x}\nrouting: {retries: lots}\n");
  EXPECT_CONTAINS(error, "server.port:");
  EXPECT_CONTAINS(error, "server.hots:");
  EXPECT_CONTAINS(error, "routing.retries:");
  EXPECT_EQ(std::count(error.begin(), error.end(), '\n'), 2);
}

// ---- loading files --------------------------------------------------------------------

class ConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    original_ = std::filesystem::current_path();
    directory_ = std::filesystem::temp_directory_path() /
                 ("turnout-config-test-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(directory_);
    std::filesystem::current_path(directory_);
  }
  void TearDown() override {
    std::filesystem::current_path(original_);
    std::filesystem::remove_all(directory_);
  }
  static void write(const std::filesystem::path& path, std::string_view text) { std::ofstream(path) << text; }

  std::filesystem::path original_;
  std::filesystem::path directory_;
};

TEST_F(ConfigFiles, MissingFileIsAnErrorNamingIt) {
  auto config = load_config(std::filesystem::path("nope/turnout.yaml"), env_of({}));
  ASSERT_FALSE(config);
  EXPECT_CONTAINS(config.error().message, "nope/turnout.yaml does not exist");
}

TEST_F(ConfigFiles, GivenFileIsTheSourceOfItsErrors) {
  write("custom.yaml", "server:\n  port: 99999\n");
  auto config = load_config(std::filesystem::path("custom.yaml"), env_of({}));
  ASSERT_FALSE(config);
  EXPECT_CONTAINS(config.error().message, "custom.yaml:2:9: server.port: must be at most 65535");
}

TEST_F(ConfigFiles, WithoutAFileTheLocalTurnoutYamlIsUsed) {
  write("turnout.yaml", "server: {port: 8123}\n");
  auto config = load_config(std::nullopt, env_of({}));
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->server.port, 8123);
  EXPECT_EQ(config->source, "turnout.yaml");
}

TEST_F(ConfigFiles, WithoutAnyFileTheDefaultsAreUsed) {
  auto config = load_config(std::nullopt, env_of({}));
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->source, "built-in defaults");
  EXPECT_EQ(config->server.port, 8000);
}

TEST(ProcessEnv, ReadsTheRealEnvironment) {
  ::setenv("TURNOUT_CONFIG_TEST_VAR", "value-1", 1);
  ::unsetenv("TURNOUT_CONFIG_TEST_UNSET");
  const EnvLookup env = process_env();
  EXPECT_EQ(env("TURNOUT_CONFIG_TEST_VAR"), "value-1");
  EXPECT_EQ(env("TURNOUT_CONFIG_TEST_UNSET"), std::nullopt);
  ::unsetenv("TURNOUT_CONFIG_TEST_VAR");
}

}  // namespace

TEST(ConfigHardening, ConnectionAndResponseLimits) {
  const Config defaults = parse_ok("");
  EXPECT_EQ(defaults.server.max_connections, 10000u);
  EXPECT_EQ(defaults.providers.at("openai").max_response_bytes, 64ull << 20);
  const Config config = parse_ok(
      "server:\n  max_connections: 2\nproviders:\n  openai:\n    base_url: https://x/v1\n    max_response_bytes: 1048576\n");
  EXPECT_EQ(config.server.max_connections, 2u);
  EXPECT_EQ(config.providers.at("openai").max_response_bytes, 1048576u);
  EXPECT_CONTAINS(parse_error("server:\n  max_connections: 0\n"), "server.max_connections");
  EXPECT_CONTAINS(parse_error("providers:\n  openai:\n    base_url: https://x/v1\n    max_response_bytes: 10\n"),
                  "providers.openai.max_response_bytes");
}

TEST(ConfigGovernance, DefaultsAndTheAdminKeyFromTheEnvironment) {
  auto defaults = default_config(env_of({}));
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->governance.admin_key, "");
  EXPECT_EQ(defaults->governance.on_insufficient, OnInsufficient::reject);
  EXPECT_FALSE(defaults->governance.allow_unpriced);
  EXPECT_EQ(defaults->governance.key_cache_ttl_s, 1);
  auto with_env = default_config(env_of({{"TURNOUT_ADMIN_KEY", "admin-secret"}}));
  ASSERT_TRUE(with_env);
  EXPECT_EQ(with_env->governance.admin_key, "admin-secret");
  const Config set = parse_ok("governance: {allow_unpriced: true, key_cache_ttl_s: 0.25}\n");
  EXPECT_TRUE(set.governance.allow_unpriced);
  EXPECT_EQ(set.governance.key_cache_ttl_s, 0.25);
}

TEST(ConfigGovernance, UnbuiltModesAndUnknownKeysAreRefusedByName) {
  EXPECT_EQ(parse_ok("governance: {on_insufficient: clamp}\n").governance.on_insufficient, OnInsufficient::clamp);
  EXPECT_EQ(parse_ok("governance: {}\n").governance.on_insufficient, OnInsufficient::reject);
  EXPECT_CONTAINS(parse_error("governance: {on_insufficient: shrink}\n"), "governance.on_insufficient");
  EXPECT_CONTAINS(parse_error("governance: {mode: fast}\n"), "governance.mode");
  EXPECT_CONTAINS(parse_error("governance: {budget: 5}\n"), "budget");
}

TEST(ConfigGovernance, LeaseModeAndItsSliceAreReadExactly) {
  EXPECT_EQ(parse_ok("governance: {}\n").governance.mode, GovernanceMode::strict);
  EXPECT_EQ(parse_ok("governance: {}\n").governance.lease_slice_pico, 1'000'000'000'000);
  const Config lease =
      parse_ok("governance: {mode: lease, lease_slice_usd: 0.002, lease_ttl_s: 10, lease_idle_s: 0.5}\n");
  EXPECT_EQ(lease.governance.mode, GovernanceMode::lease);
  EXPECT_EQ(lease.governance.lease_slice_pico, 2'000'000'000);  // $0.002, no floating point
  EXPECT_EQ(lease.governance.lease_ttl_s, 10);
  EXPECT_EQ(lease.governance.lease_idle_s, 0.5);
  EXPECT_CONTAINS(parse_error("governance: {lease_slice_usd: 0}\n"), "governance.lease_slice_usd");
  EXPECT_CONTAINS(parse_error("governance: {lease_slice_usd: -1}\n"), "governance.lease_slice_usd");
  EXPECT_CONTAINS(parse_error("governance: {lease_slice_usd: 0.0000000001}\n"), "governance.lease_slice_usd");
  EXPECT_CONTAINS(parse_error("governance: {lease_ttl_s: 0}\n"), "governance.lease_ttl_s");
  EXPECT_CONTAINS(parse_error("governance: {lease_idle_s: -2}\n"), "governance.lease_idle_s");
}

}  // namespace turnout::config
