#include "tracing/otlp_json.hpp"

#include "common/json_text.hpp"

#include <fmt/format.h>

namespace turnout::tracing {
namespace {

void append_value(std::string& out, const AttributeValue& value) {
  if (const auto* text = std::get_if<std::string>(&value)) {
    out += R"({"stringValue":)";
    append_json_string(out, *text);
  } else if (const auto* integer = std::get_if<std::int64_t>(&value)) {
    out += fmt::format(R"({{"intValue":"{}")", *integer);
  } else if (const auto* number = std::get_if<double>(&value)) {
    out += fmt::format(R"({{"doubleValue":{})", *number);
  } else {
    out += std::get<bool>(value) ? R"({"boolValue":true)" : R"({"boolValue":false)";
  }
  out.push_back('}');
}

void append_attributes(std::string& out, const std::vector<Attribute>& attributes) {
  out += R"("attributes":[)";
  for (std::size_t i = 0; i < attributes.size(); ++i) {
    if (i) out.push_back(',');
    out += R"({"key":)";
    append_json_string(out, attributes[i].key);
    out += R"(,"value":)";
    append_value(out, attributes[i].value);
    out.push_back('}');
  }
  out.push_back(']');
}

void append_span(std::string& out, const std::string& trace_id, const Span& span) {
  out += R"({"traceId":")" + trace_id + R"(","spanId":")" + hex_id(span.span_id) + '"';
  if (span.parent_span_id) out += R"(,"parentSpanId":")" + hex_id(*span.parent_span_id) + '"';
  out += R"(,"name":)";
  append_json_string(out, span.name);
  out += fmt::format(R"(,"kind":{},"startTimeUnixNano":"{}","endTimeUnixNano":"{}",)", static_cast<int>(span.kind),
                     span.start_unix_ns, span.end_unix_ns);
  append_attributes(out, span.attributes);
  if (span.error) {
    out += R"(,"status":{"code":2,"message":)";
    append_json_string(out, span.status_message);
    out.push_back('}');
  }
  out.push_back('}');
}

}  // namespace

std::string encode_otlp_json(const Resource& resource, const std::vector<Trace>& traces) {
  std::string out = R"({"resourceSpans":[{"resource":{)";
  append_attributes(out, {{"service.name", resource.service_name},
                          {"service.instance.id", resource.service_instance_id},
                          {"service.version", resource.service_version}});
  out += R"(},"scopeSpans":[{"scope":{"name":"turnout","version":)";
  append_json_string(out, resource.service_version);
  out += R"(},"spans":[)";
  bool first = true;
  for (const Trace& trace : traces) {
    const std::string trace_id = hex_id(trace.trace_id);
    for (const Span& span : trace.spans) {
      if (!first) out.push_back(',');
      first = false;
      append_span(out, trace_id, span);
    }
  }
  out += "]}]}]}";
  return out;
}

}  // namespace turnout::tracing
