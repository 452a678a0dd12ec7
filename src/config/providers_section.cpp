// The `providers` section: each provider's type, base URL, key, headers and timeouts
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

// CR or LF would end the header line early and start another (header injection); NUL is
// refused by HTTP parsers. The upstream request head is written as text, so a value that
// goes into it must be checked here, where it enters.
bool breaks_header_line(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
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
    if (breaks_header_line(*value)) {
      reader.fail(entry.second, value_path, "a header value cannot contain a line break or a NUL byte");
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
  if (const auto n = node["api_key"]) {
    const std::string key_path = child_path(path, "api_key");
    auto key = reader.string(n, key_path);
    if (key && breaks_header_line(*key)) {
      // A trailing newline is the usual cause (a key file read into the environment).
      reader.fail(n, key_path, "the key cannot contain a line break or a NUL byte (it is sent in a header)");
    } else {
      assign(provider.api_key, std::move(key));
    }
  }
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

}  // namespace

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

}  // namespace turnout::config
