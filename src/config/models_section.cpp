// The `models` section: each model's provider, prices (else the built-in table) and limits
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

}  // namespace

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

}  // namespace turnout::config
