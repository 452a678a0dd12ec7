// The `telemetry` section (docs/REFERENCE.md §3.9): where traces go and how many.
#include "config/section_readers.hpp"

namespace turnout::config {
namespace {

// http(s)://host[:port][/path], nothing after the path: the exporter appends /v1/traces.
bool plausible_endpoint(std::string_view url) {
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    rest = url.substr(8);
  } else {
    return false;
  }
  return !rest.empty() && rest.front() != '/' && rest.find_first_of("?# ") == std::string_view::npos;
}

}  // namespace

void read_telemetry(DocumentReader& reader, const YAML::Node& node, TelemetryConfig& telemetry) {
  if (!reader.expect_map(node, "telemetry")) return;
  reader.reject_unknown_keys(node, "telemetry", {"otlp_endpoint", "sample_ratio", "service_name"});
  if (const auto n = node["otlp_endpoint"]) {
    if (auto url = reader.string(n, "telemetry.otlp_endpoint")) {
      while (url->ends_with('/')) url->pop_back();
      if (!url->empty() && !plausible_endpoint(*url)) {
        reader.fail(n, "telemetry.otlp_endpoint",
                    "expected http://host[:port][/path] or https://... (the collector's OTLP/HTTP base; "
                    "spans go to {endpoint}/v1/traces), or \"\" to turn tracing off");
      } else {
        telemetry.otlp_endpoint = std::move(*url);
      }
    }
  }
  if (const auto n = node["sample_ratio"]) assign(telemetry.sample_ratio, reader.fraction(n, "telemetry.sample_ratio"));
  if (const auto n = node["service_name"]) {
    assign(telemetry.service_name, reader.non_empty_string(n, "telemetry.service_name"));
  }
}

}  // namespace turnout::config
