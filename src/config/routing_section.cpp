// The `routing` section: aliases, tiers, fallbacks, retries, encoding and cooldown
// (docs/REFERENCE.md §3 Configuration).
#include "config/config.hpp"
#include "config/document_reader.hpp"
#include "config/section_readers.hpp"

#include <algorithm>
#include <set>
#include <string>
#include <string_view>

namespace turnout::config {
namespace {

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

// Replaced whole by a file that sets it, like `fallbacks`; the models are checked once
// every section is read (check_references).
void read_embedding_aliases(DocumentReader& reader, const YAML::Node& node, RoutingConfig& routing) {
  constexpr std::string_view path = "routing.embedding_aliases";
  routing.embedding_aliases.clear();
  if (!reader.expect_map(node, path) || node.IsNull()) return;
  for (const auto& entry : node) {
    const auto alias = reader.key_text(entry.first, path);
    if (!alias) continue;
    if (auto model = reader.non_empty_string(entry.second, child_path(path, *alias))) {
      routing.embedding_aliases.insert_or_assign(*alias, std::move(*model));
    }
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

}  // namespace

void read_routing(DocumentReader& reader, const YAML::Node& node, RoutingConfig& routing) {
  if (!reader.expect_map(node, "routing")) return;
  reader.reject_unknown_keys(node, "routing",
                             {"aliases", "embedding_aliases", "encoding", "tiers", "baseline_model",
                              "allow_unknown_models", "fallbacks", "retries", "default_image_tokens", "retry_backoff_ms",
                              "max_retry_wait_s", "cooldown"});
  if (const auto n = node["aliases"]) routing.aliases = read_string_list(reader, n, "routing.aliases");
  if (const auto n = node["embedding_aliases"]) read_embedding_aliases(reader, n, routing);
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

}  // namespace turnout::config
