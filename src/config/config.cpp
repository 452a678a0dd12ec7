// Configuration schema: the built-in defaults, the overlay of a file on them, and the
// cross-checks that need the whole configuration (docs/REFERENCE.md §3 Configuration).
#include "config/config.hpp"

#include "config/document_reader.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

namespace turnout::config {
namespace {

constexpr std::string_view kDefaultsSource = "built-in defaults";

// docs/REFERENCE.md §3.2 Built-in defaults, verbatim: the defaults are this text read by
// the same code as any file, so they cannot drift from what the parser accepts.
constexpr std::string_view kDefaultYaml = R"yaml(
server:
  host: 127.0.0.1
  port: 8000
  api_keys: []              # non-empty: /v1/*, /route, /stats, /metrics need "Authorization: Bearer <key>"
  max_body_bytes: 16777216
ledger:
  url: sqlite:turnout.db   # sqlite:PATH | sqlite::memory: | postgresql://user:pass@host:port/db
providers:
  openai:
    base_url: https://api.openai.com/v1
    api_key: ${OPENAI_API_KEY:-}
    timeout_s: 600
models:                     # prices in USD per 1,000 tokens
  gpt-3.5-turbo: {provider: openai, input_cost_per_1k: 0.0005,  output_cost_per_1k: 0.0015, context_window: 16385}
  gpt-4o-mini:   {provider: openai, input_cost_per_1k: 0.00015, output_cost_per_1k: 0.0006, context_window: 128000}
  gpt-4o:        {provider: openai, input_cost_per_1k: 0.0025,  output_cost_per_1k: 0.01,   context_window: 128000}
routing:
  aliases: [auto]           # request.model values that ask for routing; absent or "" also routes
  encoding: cl100k_base     # tokenizer used for the routing count
  tiers:                    # first tier whose `below` exceeds the prompt's token count wins
    - {name: simple,  below: 1000, model: gpt-3.5-turbo}
    - {name: medium,  below: 4000, model: gpt-4o-mini}
    - {name: complex,              model: gpt-4o}
  baseline_model: gpt-4o    # what savings are measured against
  allow_unknown_models: true  # an explicit model not in `models` goes to the default provider
  fallbacks: {}             # e.g. {gpt-3.5-turbo: [gpt-4o-mini, gpt-4o]}
  retries: 2                # per model, on 429/5xx/connection errors, before any byte reached the client
)yaml";

constexpr std::uint64_t kMaxTokens = 100'000'000;  // far above any context window

template <class T>
void assign(T& field, std::optional<T> value) {
  if (value) field = std::move(*value);
}

// ---- server and ledger ----------------------------------------------------------------

std::vector<std::string> read_string_list(DocumentReader& reader, const YAML::Node& node, std::string_view path) {
  std::vector<std::string> values;
  if (!reader.expect_list(node, path) || node.IsNull()) return values;
  for (std::size_t i = 0; i < node.size(); ++i) {
    if (auto value = reader.non_empty_string(node[i], index_path(path, i))) values.push_back(std::move(*value));
  }
  return values;
}

void read_server(DocumentReader& reader, const YAML::Node& node, ServerConfig& server) {
  if (!reader.expect_map(node, "server")) return;
  reader.reject_unknown_keys(node, "server",
                             {"host", "port", "api_keys", "max_body_bytes", "shutdown_grace_s", "read_timeout_s",
                              "idle_timeout_s", "threads", "max_connections"});
  if (const auto n = node["host"]) assign(server.host, reader.non_empty_string(n, "server.host"));
  if (const auto n = node["port"]) {
    if (auto port = reader.integer(n, "server.port", 0, 65535)) server.port = static_cast<std::uint16_t>(*port);
  }
  if (const auto n = node["api_keys"]) server.api_keys = read_string_list(reader, n, "server.api_keys");
  if (const auto n = node["max_body_bytes"]) {
    assign(server.max_body_bytes, reader.integer(n, "server.max_body_bytes", 1, std::uint64_t{1} << 40));
  }
  if (const auto n = node["shutdown_grace_s"]) assign(server.shutdown_grace_s, reader.seconds(n, "server.shutdown_grace_s", true));
  if (const auto n = node["read_timeout_s"]) assign(server.read_timeout_s, reader.seconds(n, "server.read_timeout_s", false));
  if (const auto n = node["idle_timeout_s"]) assign(server.idle_timeout_s, reader.seconds(n, "server.idle_timeout_s", false));
  if (const auto n = node["max_connections"])
    assign(server.max_connections, reader.integer(n, "server.max_connections", 1, 10000000));
  if (const auto n = node["threads"]) {
    if (auto threads = reader.integer(n, "server.threads", 0, 1024)) server.threads = static_cast<unsigned>(*threads);
  }
}

void read_ledger(DocumentReader& reader, const YAML::Node& node, LedgerConfig& ledger) {
  if (!reader.expect_map(node, "ledger")) return;
  reader.reject_unknown_keys(node, "ledger", {"url", "retention_days", "spool_path", "spool_max_records"});
  if (const auto n = node["retention_days"]) {
    assign(ledger.retention_days, reader.integer(n, "ledger.retention_days", 0, 365 * 100));
  }
  if (const auto n = node["spool_path"]) assign(ledger.spool_path, reader.string(n, "ledger.spool_path"));
  if (const auto n = node["spool_max_records"]) {
    assign(ledger.spool_max_records, reader.integer(n, "ledger.spool_max_records", 1, 1'000'000'000));
  }
  const auto n = node["url"];
  if (!n) return;
  auto url = reader.non_empty_string(n, "ledger.url");
  if (!url) return;
  const bool known_scheme =
      url->starts_with("sqlite:") || url->starts_with("postgresql://") || url->starts_with("postgres://");
  if (!known_scheme) {
    // The URL is not quoted back: a PostgreSQL URL carries a password.
    reader.fail(n, "ledger.url", "expected sqlite:PATH, sqlite::memory: or postgresql://user:pass@host:port/db");
    return;
  }
  ledger.url = std::move(*url);
}

// ---- providers ------------------------------------------------------------------------

bool is_http_url(std::string_view url) {
  std::string_view rest;
  if (url.starts_with("https://")) {
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else {
    return false;
  }
  const bool has_host = !rest.empty() && rest.front() != '/' && rest.front() != ':';
  const bool has_space = std::any_of(url.begin(), url.end(), [](unsigned char c) { return c <= ' ' || c == 0x7f; });
  return has_host && !has_space;
}

bool is_header_name(std::string_view name) {
  constexpr std::string_view kTokenSymbols = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           kTokenSymbols.find(c) != std::string_view::npos;
  });
}

void read_headers(DocumentReader& reader, const YAML::Node& node, std::string_view path, ProviderConfig& provider) {
  provider.headers.clear();
  if (!reader.expect_map(node, path) || node.IsNull()) return;
  for (const auto& entry : node) {
    const auto name = reader.key_text(entry.first, path);
    if (!name) continue;
    const std::string value_path = child_path(path, *name);
    if (!is_header_name(*name)) {
      reader.fail(entry.first, value_path, "not a valid HTTP header name");
      continue;
    }
    auto value = reader.string(entry.second, value_path);
    if (!value) continue;
    if (value->find_first_of("\r\n") != std::string::npos) {
      reader.fail(entry.second, value_path, "a header value cannot contain a line break");
      continue;
    }
    provider.headers.emplace_back(*name, std::move(*value));
  }
}

std::optional<ProviderType> read_provider_type(DocumentReader& reader, const YAML::Node& node, std::string_view path) {
  const auto type = reader.choice(node, path, {"openai", "azure"});
  if (!type) return std::nullopt;
  return *type == "azure" ? ProviderType::azure : ProviderType::openai;
}

ProviderConfig read_provider(DocumentReader& reader, const std::string& name, const YAML::Node& node,
                             const std::string& path) {
  ProviderConfig provider;
  provider.name = name;
  if (!reader.expect_map(node, path)) return provider;
  reader.reject_unknown_keys(node, path,
                             {"type", "base_url", "api_key", "timeout_s", "connect_timeout_s", "first_byte_timeout_s",
                              "stream_idle_timeout_s", "max_response_bytes", "headers", "api_version"});
  if (const auto n = node["type"]) assign(provider.type, read_provider_type(reader, n, child_path(path, "type")));
  if (const auto n = node["base_url"]) {
    const std::string url_path = child_path(path, "base_url");
    if (auto url = reader.non_empty_string(n, url_path)) {
      if (!is_http_url(*url)) {
        reader.fail(n, url_path, "expected an http:// or https:// URL such as https://api.openai.com/v1");
      } else {
        while (url->ends_with('/')) url->pop_back();
        provider.base_url = std::move(*url);
      }
    }
  } else {
    reader.fail(node, child_path(path, "base_url"), "required (e.g. https://api.openai.com/v1)");
  }
  if (const auto n = node["api_key"]) assign(provider.api_key, reader.string(n, child_path(path, "api_key")));
  if (const auto n = node["timeout_s"]) assign(provider.timeout_s, reader.seconds(n, child_path(path, "timeout_s"), false));
  if (const auto n = node["connect_timeout_s"]) {
    assign(provider.connect_timeout_s, reader.seconds(n, child_path(path, "connect_timeout_s"), false));
  }
  if (const auto n = node["first_byte_timeout_s"]) {
    assign(provider.first_byte_timeout_s, reader.seconds(n, child_path(path, "first_byte_timeout_s"), true));
  }
  if (const auto n = node["stream_idle_timeout_s"]) {
    assign(provider.stream_idle_timeout_s, reader.seconds(n, child_path(path, "stream_idle_timeout_s"), false));
  }
  if (const auto n = node["max_response_bytes"]) {
    assign(provider.max_response_bytes,
           reader.integer(n, child_path(path, "max_response_bytes"), 1024, std::uint64_t{1} << 40));
  }
  if (const auto n = node["headers"]) read_headers(reader, n, child_path(path, "headers"), provider);
  if (const auto n = node["api_version"]) {
    assign(provider.api_version, reader.non_empty_string(n, child_path(path, "api_version")));
  }
  if (provider.type == ProviderType::azure && provider.api_version.empty()) {
    reader.fail(node, child_path(path, "api_version"), "required when type is azure (e.g. 2024-10-21)");
  }
  return provider;
}

void read_providers(DocumentReader& reader, const YAML::Node& node, Config& config) {
  config.providers.clear();  // a file's `providers` replaces the defaults whole
  if (!reader.expect_map(node, "providers") || node.IsNull()) return;
  for (const auto& entry : node) {
    const auto name = reader.key_text(entry.first, "providers");
    if (!name) continue;
    if (name->empty()) {
      reader.fail(entry.first, "providers", "a provider name must not be empty");
      continue;
    }
    config.providers.insert_or_assign(*name, read_provider(reader, *name, entry.second, child_path("providers", *name)));
  }
}

// ---- models ---------------------------------------------------------------------------

// Prices from the entry, else from the built-in table (by upstream name), else unpriced.
pricing::Rates read_rates(DocumentReader& reader, const YAML::Node& node, const std::string& path,
                          std::string_view upstream_name) {
  pricing::Rates rates;
  const auto input = node["input_cost_per_1k"];
  const auto output = node["output_cost_per_1k"];
  const auto cached = node["cached_input_cost_per_1k"];
  if (input) rates.input_pico_per_token = reader.price(input, child_path(path, "input_cost_per_1k"));
  if (output) rates.output_pico_per_token = reader.price(output, child_path(path, "output_cost_per_1k"));
  if (cached && !cached.IsNull()) {
    rates.cached_input_pico_per_token = reader.price(cached, child_path(path, "cached_input_cost_per_1k"));
  }

  if (!input && !output) {
    if (cached) reader.fail(cached, child_path(path, "cached_input_cost_per_1k"), "set input_cost_per_1k too");
    const pricing::Rates* builtin = pricing::builtin_rates(upstream_name);
    return builtin ? *builtin : pricing::Rates{};
  }
  if (!input || !output) {
    reader.fail(node, path, "set both input_cost_per_1k and output_cost_per_1k, or neither (built-in price or unpriced)");
  }
  return rates;
}

ModelConfig read_model(DocumentReader& reader, const std::string& name, const YAML::Node& node, const std::string& path) {
  ModelConfig model;
  model.name = name;
  model.upstream_name = name;
  if (!reader.expect_map(node, path)) return model;
  reader.reject_unknown_keys(node, path,
                             {"provider", "upstream_name", "input_cost_per_1k", "output_cost_per_1k",
                              "cached_input_cost_per_1k", "context_window", "max_output_tokens"});
  if (const auto n = node["provider"]) {
    assign(model.provider, reader.non_empty_string(n, child_path(path, "provider")));
  } else {
    reader.fail(node, child_path(path, "provider"), "required (the name of an entry in `providers`)");
  }
  if (const auto n = node["upstream_name"]) assign(model.upstream_name, reader.non_empty_string(n, child_path(path, "upstream_name")));

  model.rates = read_rates(reader, node, path, model.upstream_name);

  const pricing::BuiltinModel* builtin = pricing::builtin_model(model.upstream_name);
  if (const auto n = node["context_window"]) {
    assign(model.context_window, reader.integer(n, child_path(path, "context_window"), 1, kMaxTokens));
  } else if (builtin) {
    model.context_window = builtin->context_window;
  } else {
    reader.fail(node, child_path(path, "context_window"),
                "required: there is no built-in context window for " +
                    reader.quoted(child_path(path, "upstream_name"), model.upstream_name));
  }
  if (const auto n = node["max_output_tokens"]; n && !n.IsNull()) {
    model.max_output_tokens = reader.integer(n, child_path(path, "max_output_tokens"), 1, kMaxTokens);
  }
  return model;
}

void read_models(DocumentReader& reader, const YAML::Node& node, Config& config) {
  config.models.clear();  // a file's `models` replaces the defaults whole
  if (!reader.expect_map(node, "models") || node.IsNull()) return;
  for (const auto& entry : node) {
    const auto name = reader.key_text(entry.first, "models");
    if (!name) continue;
    if (name->empty()) {
      reader.fail(entry.first, "models", "a model name must not be empty");
      continue;
    }
    config.models.insert_or_assign(*name, read_model(reader, *name, entry.second, child_path("models", *name)));
  }
}

// ---- routing --------------------------------------------------------------------------

Tier read_tier(DocumentReader& reader, const YAML::Node& node, const std::string& path) {
  Tier tier;
  if (!reader.expect_map(node, path)) return tier;
  reader.reject_unknown_keys(node, path, {"name", "below", "model"});
  if (const auto n = node["name"]) {
    assign(tier.name, reader.non_empty_string(n, child_path(path, "name")));
  } else {
    reader.fail(node, child_path(path, "name"), "required (reported as the route, e.g. simple)");
  }
  if (const auto n = node["below"]; n && !n.IsNull()) {
    tier.below = reader.integer(n, child_path(path, "below"), 1, kMaxTokens);
  }
  if (const auto n = node["model"]) {
    assign(tier.model, reader.non_empty_string(n, child_path(path, "model")));
  } else {
    reader.fail(node, child_path(path, "model"), "required (a configured model)");
  }
  return tier;
}

// Every tier but the last needs a `below` larger than the previous one; the last needs
// none. A last tier with a `below` is an error rather than a silent catch-all: with the
// rule "first tier whose `below` exceeds the count", a larger prompt would match nothing,
// and guessing (reject the request? use the last tier anyway?) would surprise someone.
void check_tier_order(DocumentReader& reader, const YAML::Node& list, const std::vector<Tier>& tiers) {
  std::optional<std::uint64_t> previous_below;
  for (std::size_t i = 0; i < tiers.size(); ++i) {
    const std::string path = index_path("routing.tiers", i);
    const bool last = i + 1 == tiers.size();
    const std::optional<std::uint64_t>& below = tiers[i].below;
    if (last && below) {
      reader.fail(list[i]["below"], child_path(path, "below"),
                  "the last tier takes every prompt the earlier tiers do not, so it must not set `below`");
    } else if (!last && !below) {
      reader.fail(list[i], child_path(path, "below"), "required: only the last tier may omit `below`");
    } else if (below && previous_below && *below <= *previous_below) {
      reader.fail(list[i]["below"], child_path(path, "below"),
                  "must be greater than the previous tier's below (" + std::to_string(*previous_below) + ")");
    }
    if (below) previous_below = below;
  }
}

void read_tiers(DocumentReader& reader, const YAML::Node& node, RoutingConfig& routing) {
  routing.tiers.clear();
  if (!reader.expect_list(node, "routing.tiers")) return;
  if (node.IsNull() || node.size() == 0) {
    reader.fail(node, "routing.tiers", "at least one tier is required");
    return;
  }
  std::set<std::string, std::less<>> names;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const std::string path = index_path("routing.tiers", i);
    Tier tier = read_tier(reader, node[i], path);
    if (!tier.name.empty() && !names.insert(tier.name).second) {
      const std::string name_path = child_path(path, "name");
      reader.fail(node[i]["name"], name_path, "duplicate tier name " + reader.quoted(name_path, tier.name));
    }
    routing.tiers.push_back(std::move(tier));
  }
  check_tier_order(reader, node, routing.tiers);
}

void read_fallbacks(DocumentReader& reader, const YAML::Node& node, RoutingConfig& routing) {
  routing.fallbacks.clear();
  if (!reader.expect_map(node, "routing.fallbacks") || node.IsNull()) return;
  for (const auto& entry : node) {
    const auto model = reader.key_text(entry.first, "routing.fallbacks");
    if (!model) continue;
    const std::string path = child_path("routing.fallbacks", *model);
    routing.fallbacks.insert_or_assign(*model, read_string_list(reader, entry.second, path));
  }
}

std::optional<tokenizer::EncodingId> read_encoding(DocumentReader& reader, const YAML::Node& node, std::string_view path) {
  const auto name = reader.choice(node, path, {"cl100k_base", "o200k_base"});
  if (!name) return std::nullopt;
  return tokenizer::parse_encoding_name(*name);
}

// Read key by key over the current values, like the other single-valued sections.
void read_cooldown(DocumentReader& reader, const YAML::Node& node, CooldownConfig& cooldown) {
  constexpr std::string_view path = "routing.cooldown";
  if (!reader.expect_map(node, path)) return;
  reader.reject_unknown_keys(node, path, {"failures", "window_s", "duration_s"});
  if (const auto n = node["failures"]) {
    // The bound keeps the per-model failure history small.
    if (auto failures = reader.integer(n, child_path(path, "failures"), 0, 1000)) {
      cooldown.failures = static_cast<unsigned>(*failures);
    }
  }
  if (const auto n = node["window_s"]) assign(cooldown.window_s, reader.seconds(n, child_path(path, "window_s"), false));
  if (const auto n = node["duration_s"]) {
    assign(cooldown.duration_s, reader.seconds(n, child_path(path, "duration_s"), false));
  }
}

void read_routing(DocumentReader& reader, const YAML::Node& node, RoutingConfig& routing) {
  if (!reader.expect_map(node, "routing")) return;
  reader.reject_unknown_keys(node, "routing",
                             {"aliases", "encoding", "tiers", "baseline_model", "allow_unknown_models", "fallbacks",
                              "retries", "default_image_tokens", "retry_backoff_ms", "max_retry_wait_s", "cooldown"});
  if (const auto n = node["aliases"]) routing.aliases = read_string_list(reader, n, "routing.aliases");
  if (const auto n = node["encoding"]) assign(routing.encoding, read_encoding(reader, n, "routing.encoding"));
  if (const auto n = node["tiers"]) read_tiers(reader, n, routing);
  if (const auto n = node["baseline_model"]) assign(routing.baseline_model, reader.non_empty_string(n, "routing.baseline_model"));
  if (const auto n = node["allow_unknown_models"]) {
    assign(routing.allow_unknown_models, reader.boolean(n, "routing.allow_unknown_models"));
  }
  if (const auto n = node["fallbacks"]) read_fallbacks(reader, n, routing);
  if (const auto n = node["retries"]) {
    if (auto retries = reader.integer(n, "routing.retries", 0, 20)) routing.retries = static_cast<unsigned>(*retries);
  }
  if (const auto n = node["default_image_tokens"]) {
    if (auto tokens = reader.integer(n, "routing.default_image_tokens", 1, 1'000'000)) {
      routing.default_image_tokens = static_cast<std::uint32_t>(*tokens);
    }
  }
  if (const auto n = node["retry_backoff_ms"]) {
    if (auto backoff = reader.integer(n, "routing.retry_backoff_ms", 0, 600'000)) {
      routing.retry_backoff_ms = static_cast<std::uint32_t>(*backoff);
    }
  }
  if (const auto n = node["max_retry_wait_s"]) {
    assign(routing.max_retry_wait_s, reader.seconds(n, "routing.max_retry_wait_s", true));
  }
  if (const auto n = node["cooldown"]) read_cooldown(reader, n, routing.cooldown);
}

// ---- whole document -------------------------------------------------------------------

void overlay_sections(DocumentReader& reader, std::string_view yaml_text, Config& config) {
  const auto root = reader.load(yaml_text);
  if (!root || root->IsNull()) return;  // an empty file keeps every default
  if (!root->IsMap()) {
    reader.fail(*root, "(top level)", "expected a map of sections: server, ledger, providers, models, routing");
    return;
  }
  reader.reject_unknown_keys(*root, "", {"server", "ledger", "providers", "models", "routing"});
  if (const auto n = (*root)["server"]) read_server(reader, n, config.server);
  if (const auto n = (*root)["ledger"]) read_ledger(reader, n, config.ledger);
  if (const auto n = (*root)["providers"]) read_providers(reader, n, config);
  if (const auto n = (*root)["models"]) read_models(reader, n, config);
  if (const auto n = (*root)["routing"]) read_routing(reader, n, config.routing);
}

void overlay_document(DocumentReader& reader, std::string_view yaml_text, Config& config) {
  try {
    overlay_sections(reader, yaml_text, config);
  } catch (const YAML::Exception& e) {
    // The readers check node types before indexing; this is a last line of defence.
    reader.fail("(document)", "unreadable YAML structure: " + e.msg);
  }
}

// Names whose value is a built-in default get a hint: the usual cause is a file that
// replaced `models` but kept the default tiers, which name the default models.
std::string unknown_model_problem(const DocumentReader& reader, std::string_view path, std::string_view model) {
  std::string problem = reader.quoted(path, model) + " is not a configured model (see `models`)";
  if (!reader.gave(path)) problem += "; this is a built-in default: when you replace `models`, set it too";
  return problem;
}

void check_references(DocumentReader& reader, Config& config) {
  if (config.providers.empty()) reader.fail("providers", "at least one provider is required");
  if (!config.ledger.spool_path.empty() && config.ledger.url == "sqlite:" + config.ledger.spool_path) {
    reader.fail("ledger.spool_path", "must not be the ledger database itself (ledger.url)");
  }
  for (auto& [name, model] : config.models) {
    const std::string path = child_path(child_path("models", name), "provider");
    if (!model.provider.empty() && !config.find_provider(model.provider)) {
      reader.fail(path, "unknown provider " + reader.quoted(path, model.provider) + " (see `providers`)");
    }
  }
  RoutingConfig& routing = config.routing;
  for (std::size_t i = 0; i < routing.tiers.size(); ++i) {
    const std::string path = child_path(index_path("routing.tiers", i), "model");
    const std::string& model = routing.tiers[i].model;
    if (!model.empty() && !config.find_model(model)) reader.fail(path, unknown_model_problem(reader, path, model));
  }
  if (const ModelConfig* baseline = config.find_model(routing.baseline_model); !baseline) {
    reader.fail("routing.baseline_model", unknown_model_problem(reader, "routing.baseline_model", routing.baseline_model));
  } else if (!baseline->rates.priced()) {
    reader.fail("routing.baseline_model", reader.quoted("routing.baseline_model", baseline->name) +
                                              " has no price, so savings could not be measured");
  }
  for (const auto& [from, to] : routing.fallbacks) {
    const std::string path = child_path("routing.fallbacks", from);
    if (!config.find_model(from)) reader.fail(path, unknown_model_problem(reader, path, from));
    std::set<std::string_view> seen;
    for (std::size_t i = 0; i < to.size(); ++i) {
      const std::string item = index_path(path, i);
      if (!config.find_model(to[i])) {
        reader.fail(item, unknown_model_problem(reader, item, to[i]));
      } else if (to[i] == from) {
        reader.fail(item, "a model cannot be its own fallback");
      } else if (!seen.insert(to[i]).second) {
        reader.fail(item, reader.quoted(item, to[i]) + " is listed twice");
      }
    }
  }
  std::set<std::string_view> aliases;
  for (std::size_t i = 0; i < routing.aliases.size(); ++i) {
    const std::string path = index_path("routing.aliases", i);
    const std::string& alias = routing.aliases[i];
    if (config.find_model(alias)) {
      reader.fail(path, reader.quoted(path, alias) + " is also a configured model: a request for it would be ambiguous");
    } else if (!aliases.insert(alias).second) {
      reader.fail(path, reader.quoted(path, alias) + " is listed twice");
    }
  }
}

// Per-model values that depend on the final routing section.
void derive_model_encodings(Config& config) {
  for (auto& [name, model] : config.models) {
    const auto by_name = tokenizer::encoding_for_model(model.name, config.routing.encoding);
    model.encoding = tokenizer::encoding_for_model(model.upstream_name, by_name);
  }
}

Result<Config> finish(DocumentReader& reader, Config config, std::string source) {
  if (reader.ok()) check_references(reader, config);
  if (!reader.ok()) return make_error(reader.error_text());
  derive_model_encodings(config);
  config.source = std::move(source);
  return config;
}

// The built-in defaults before the cross-checks (a file may still replace what they name).
Result<Config> defaults_only(const EnvLookup& env) {
  Config config;
  DocumentReader reader(std::string(kDefaultsSource), env, false);
  overlay_document(reader, kDefaultYaml, config);
  if (!reader.ok()) return make_error(reader.error_text());
  return config;
}

Result<std::string> read_text_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return make_error("config file " + path.string() + " does not exist");
  if (std::filesystem::is_directory(path, ec)) return make_error("config file " + path.string() + " is a directory");
  std::ifstream file(path, std::ios::binary);
  if (!file) return make_error("cannot read config file " + path.string() + ": " + std::strerror(errno));
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) return make_error("cannot read config file " + path.string() + ": " + std::strerror(errno));
  // Spelled out: Error is constructible from a string too (C++20 aggregate init).
  return Result<std::string>(boost::system::in_place_value, text.str());
}

}  // namespace

const ModelConfig* Config::find_model(std::string_view name) const {
  const auto it = models.find(name);
  return it == models.end() ? nullptr : &it->second;
}

const ProviderConfig* Config::find_provider(std::string_view name) const {
  const auto it = providers.find(name);
  return it == providers.end() ? nullptr : &it->second;
}

const ProviderConfig* Config::default_provider() const {
  if (const ProviderConfig* openai = find_provider("openai")) return openai;
  return providers.empty() ? nullptr : &providers.begin()->second;
}

EnvLookup process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

Result<Config> default_config(const EnvLookup& env) {
  auto config = defaults_only(env);
  if (!config) return config.error();
  DocumentReader reader(std::string(kDefaultsSource), env, false);
  return finish(reader, std::move(*config), std::string(kDefaultsSource));
}

Result<Config> parse_config(std::string_view yaml_text, std::string_view source_name, const EnvLookup& env) {
  auto config = defaults_only(env);
  if (!config) return config.error();
  DocumentReader reader(std::string(source_name), env, true);
  overlay_document(reader, yaml_text, *config);
  return finish(reader, std::move(*config), std::string(source_name));
}

Result<Config> load_config(const std::optional<std::filesystem::path>& file, const EnvLookup& env) {
  std::filesystem::path path;
  if (file) {
    path = *file;
  } else if (std::error_code ec; std::filesystem::is_regular_file("turnout.yaml", ec)) {
    path = "turnout.yaml";
  } else {
    return default_config(env);
  }
  auto text = read_text_file(path);
  if (!text) return text.error();
  return parse_config(*text, path.string(), env);
}

}  // namespace turnout::config
