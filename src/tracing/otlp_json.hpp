#pragma once
// OTLP/JSON encoding of trace batches (the ExportTraceServiceRequest message of
// opentelemetry-proto, JSON-mapped as the OTLP spec asks: ids in lower-case hex, 64-bit
// integers and nanosecond times as decimal strings, enums as numbers).
#include "tracing/call_trace.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace turnout::tracing {

struct Resource {
  std::string service_name;
  std::string service_instance_id;
  std::string service_version;
};

// One resourceSpans with one scopeSpans holding every span of `traces`.
std::string encode_otlp_json(const Resource& resource, const std::vector<Trace>& traces);

}  // namespace turnout::tracing
