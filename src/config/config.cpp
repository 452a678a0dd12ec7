// Configuration schema: the built-in defaults, the overlay of a file on them, and the
// cross-checks that need the whole configuration (docs/REFERENCE.md §3 Configuration).
#include "config/config.hpp"

#include "config/document_reader.hpp"
#include "config/section_readers.hpp"

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
governance:
  admin_key: ${TURNOUT_ADMIN_KEY:-}   # empty: the admin API is off (the CLI still works)
  on_insufficient: reject   # reject | clamp
  mode: strict              # strict | lease
  allow_unpriced: false     # a model without a price under a budget is refused
)yaml";

// ---- server and ledger ----------------------------------------------------------------


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
  reader.reject_unknown_keys(node, "ledger", {"url", "retention_days", "spool_path", "spool_max_records", "journal"});
  if (const auto n = node["retention_days"]) {
    assign(ledger.retention_days, reader.integer(n, "ledger.retention_days", 0, 365 * 100));
  }
  if (const auto n = node["spool_path"]) assign(ledger.spool_path, reader.string(n, "ledger.spool_path"));
  if (const auto n = node["journal"]) assign(ledger.journal, reader.boolean(n, "ledger.journal"));
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


// ---- whole document -------------------------------------------------------------------

void overlay_sections(DocumentReader& reader, std::string_view yaml_text, Config& config) {
  const auto root = reader.load(yaml_text);
  if (!root || root->IsNull()) return;  // an empty file keeps every default
  if (!root->IsMap()) {
    reader.fail(*root, "(top level)",
                "expected a map of sections: server, ledger, providers, models, routing, governance, telemetry");
    return;
  }
  reader.reject_unknown_keys(*root, "",
                             {"server", "ledger", "providers", "models", "routing", "governance", "telemetry"});
  if (const auto n = (*root)["server"]) read_server(reader, n, config.server);
  if (const auto n = (*root)["ledger"]) read_ledger(reader, n, config.ledger);
  if (const auto n = (*root)["providers"]) read_providers(reader, n, config);
  if (const auto n = (*root)["models"]) read_models(reader, n, config);
  if (const auto n = (*root)["routing"]) read_routing(reader, n, config.routing);
  if (const auto n = (*root)["governance"]) read_governance(reader, n, config.governance);
  if (const auto n = (*root)["telemetry"]) read_telemetry(reader, n, config.telemetry);
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
  for (const auto& [alias, model] : routing.embedding_aliases) {
    const std::string path = child_path("routing.embedding_aliases", alias);
    const ModelConfig* configured = config.find_model(model);
    const pricing::BuiltinModel* builtin =
        pricing::builtin_model(configured && !configured->upstream_name.empty() ? std::string_view(configured->upstream_name)
                                                                                : std::string_view(model));
    const bool builtin_embedding = builtin && builtin->kind == pricing::ModelKind::embedding;
    if (config.find_model(alias)) {
      reader.fail(path, "the alias " + reader.quoted(path, alias) +
                            " is also a configured model: a request for it would be ambiguous");
    } else if (!config.find_model(model) && !(routing.allow_unknown_models && builtin_embedding)) {
      reader.fail(path, reader.quoted(path, model) +
                            " is neither a configured model (see `models`) nor a built-in embedding model");
    } else if (builtin && builtin->kind != pricing::ModelKind::embedding) {
      reader.fail(path, reader.quoted(path, model) + " is a chat model: an embedding alias needs an embedding model");
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

std::vector<std::string> read_string_list(DocumentReader& reader, const YAML::Node& node, std::string_view path) {
  std::vector<std::string> values;
  if (!reader.expect_list(node, path) || node.IsNull()) return values;
  for (std::size_t i = 0; i < node.size(); ++i) {
    if (auto value = reader.non_empty_string(node[i], index_path(path, i))) values.push_back(std::move(*value));
  }
  return values;
}

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
