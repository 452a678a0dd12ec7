#pragma once
// Configuration: YAML parsed and validated once at start-up into these immutable typed
// structs (docs/REFERENCE.md §3 Configuration). Nothing downstream re-validates or
// mutates them.
#include "common/result.hpp"
#include "pricing/pricing.hpp"
#include "tokenizer/tokenizer.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace turnout::config {

struct ServerConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8000;
  std::vector<std::string> api_keys;  // non-empty: /v1/*, /route, /stats, /metrics need a key
  std::uint64_t max_body_bytes = 16777216;
  double shutdown_grace_s = 30;
  double read_timeout_s = 30;     // headers and body of one request must arrive within this
  double idle_timeout_s = 75;     // keep-alive connection with no request is closed after this
  unsigned threads = 0;           // 0: one event-loop thread per core
  std::uint64_t max_connections = 10000;  // open client connections; more wait in the listen backlog

  bool operator==(const ServerConfig&) const = default;  // a reload compares old and new
};

struct LedgerConfig {
  std::string url = "sqlite:turnout.db";  // sqlite:PATH | sqlite::memory: | postgresql://...
  // Raw call records older than this many days are deleted; the roll-ups behind /stats
  // are kept. 0 keeps every record.
  std::uint64_t retention_days = 0;
  // Where records the database does not take are kept, fsync'd, until it takes writes
  // again (an SQLite file, created only when needed; relative to the working directory).
  // "": no spool (the gateway then refuses calls while the database is away).
  std::string spool_path = "turnout-spool.db";
  std::uint64_t spool_max_records = 1'000'000;  // beyond: calls are refused (503)
  // The journal hand-off (docs/ARCHITECTURE.md): calls without a hold answered once their
  // record is in the loop's journal file, before the commit. File-backed SQLite only.
  bool journal = true;

  bool operator==(const LedgerConfig&) const = default;  // a reload compares old and new
};

enum class ProviderType { openai, azure };

struct ProviderConfig {
  std::string name;
  ProviderType type = ProviderType::openai;
  std::string base_url;  // e.g. https://api.openai.com/v1 (no trailing slash)
  std::string api_key;   // secret: never logged or echoed
  double timeout_s = 600;         // total time for one upstream attempt
  double connect_timeout_s = 10;
  double stream_idle_timeout_s = 60;  // streaming: longest silence between upstream events
  double first_byte_timeout_s = 0;    // request sent -> response head; 0: only timeout_s bounds it
  std::uint64_t max_response_bytes = 64ull << 20;  // one response body, whatever its framing
  std::vector<std::pair<std::string, std::string>> headers;  // extra request headers
  std::string api_version;        // azure: api-version query parameter

  bool operator==(const ProviderConfig&) const = default;  // a reload compares old and new
};

struct ModelConfig {
  std::string name;           // the name clients use and the ledger records
  std::string provider;       // key into Config::providers
  std::string upstream_name;  // sent upstream as `model` (defaults to name)
  pricing::Rates rates;
  std::uint64_t context_window = 0;
  std::optional<std::uint64_t> max_output_tokens;
  tokenizer::EncodingId encoding = tokenizer::EncodingId::cl100k_base;  // from the name

  bool operator==(const ModelConfig&) const = default;  // a reload compares old and new
};

struct Tier {
  std::string name;
  std::optional<std::uint64_t> below;  // unset: catches every count
  std::string model;

  bool operator==(const Tier&) const = default;  // a reload compares old and new
};

// A model whose upstream keeps failing is skipped for a while (docs/REFERENCE.md §4.4
// Retries, fallbacks and cooldown; its retryable failures: 429, 5xx, timeouts, connection
// errors).
struct CooldownConfig {
  unsigned failures = 5;    // this many failures within window_s start a cooldown; 0: never
  double window_s = 30;
  double duration_s = 60;   // how long the model is skipped

  bool operator==(const CooldownConfig&) const = default;  // a reload compares old and new
};

struct RoutingConfig {
  std::vector<std::string> aliases{"auto"};
  // POST /v1/embeddings: a model name a client may send (e.g. "auto") -> the configured
  // embedding model it stands for. Chat aliases never route embeddings.
  std::map<std::string, std::string, std::less<>> embedding_aliases;
  tokenizer::EncodingId encoding = tokenizer::EncodingId::cl100k_base;
  std::vector<Tier> tiers;
  std::string baseline_model = "gpt-4o";
  bool allow_unknown_models = true;
  std::map<std::string, std::vector<std::string>, std::less<>> fallbacks;
  unsigned retries = 2;
  std::uint32_t default_image_tokens = 765;
  std::uint32_t retry_backoff_ms = 200;
  double max_retry_wait_s = 20;
  CooldownConfig cooldown;

  bool operator==(const RoutingConfig&) const = default;  // a reload compares old and new
};

// Virtual keys, teams, budgets and rate limits (docs/REFERENCE.md "Governance"). The keys
// and limits themselves live in the ledger database; this is how the gateway applies them.
enum class OnInsufficient { reject, clamp };
enum class GovernanceMode { strict, lease };

struct GovernanceConfig {
  std::string admin_key;  // secret: never logged or echoed; "" turns the admin API off
  OnInsufficient on_insufficient = OnInsufficient::reject;
  GovernanceMode mode = GovernanceMode::strict;
  bool allow_unpriced = false;  // a model without a price under a budget is refused
  double key_cache_ttl_s = 1;   // how long a verified (or unknown) key is trusted without the database
  // Lease mode (docs/REFERENCE.md §8): the most one replica reserves of a budget at once,
  // how long it admits calls against one lease, and after how long idle it gives the
  // unused part back.
  std::int64_t lease_slice_pico = 1'000'000'000'000;  // $1
  double lease_ttl_s = 30;
  double lease_idle_s = 5;
};

// OpenTelemetry traces (docs/REFERENCE.md §3.9): off while otlp_endpoint is empty.
struct TelemetryConfig {
  std::string otlp_endpoint;  // http(s)://host[:port][/path]; spans are POSTed to {endpoint}/v1/traces
  double sample_ratio = 1.0;  // share of new traces kept, 0..1 (a client's traceparent decides its own)
  std::string service_name = "turnout";

  bool operator==(const TelemetryConfig&) const = default;  // a reload compares old and new
};

struct Config {
  ServerConfig server;
  LedgerConfig ledger;
  std::map<std::string, ProviderConfig, std::less<>> providers;
  std::map<std::string, ModelConfig, std::less<>> models;
  RoutingConfig routing;
  GovernanceConfig governance;
  TelemetryConfig telemetry;
  std::string source;  // "built-in defaults" or the file path, for messages

  const ModelConfig* find_model(std::string_view name) const;
  const ProviderConfig* find_provider(std::string_view name) const;
  // The provider an explicit unknown model goes to: "openai" if configured, else the
  // first provider by name.
  const ProviderConfig* default_provider() const;
};

// Looks up an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;
EnvLookup process_env();

// The built-in defaults (docs/REFERENCE.md §3.2 Built-in defaults).
Result<Config> default_config(const EnvLookup& env);

// Parses YAML text layered over the defaults (key by key; maps/lists replace whole).
// Errors name the source, the key path (e.g. routing.tiers[1].below) and the problem.
Result<Config> parse_config(std::string_view yaml_text, std::string_view source_name,
                            const EnvLookup& env);

// `turnout serve` rules: the given file, else ./turnout.yaml if present, else defaults.
Result<Config> load_config(const std::optional<std::filesystem::path>& file, const EnvLookup& env);

}  // namespace turnout::config
