// Readers of the configuration's sections, one file each, shared by config.cpp's overlay
// of a document on the defaults. Internal to the config library.
#pragma once

#include "config/config.hpp"
#include "config/document_reader.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::config {

inline constexpr std::uint64_t kMaxTokens = 100'000'000;  // far above any context window

template <class T>
void assign(T& field, std::optional<T> value) {
  if (value) field = std::move(*value);
}

std::vector<std::string> read_string_list(DocumentReader& reader, const YAML::Node& node, std::string_view path);

void read_providers(DocumentReader& reader, const YAML::Node& node, Config& config);
void read_models(DocumentReader& reader, const YAML::Node& node, Config& config);
void read_routing(DocumentReader& reader, const YAML::Node& node, RoutingConfig& routing);
void read_governance(DocumentReader& reader, const YAML::Node& node, GovernanceConfig& governance);
void read_telemetry(DocumentReader& reader, const YAML::Node& node, TelemetryConfig& telemetry);

}  // namespace turnout::config
