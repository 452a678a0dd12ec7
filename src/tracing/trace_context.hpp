#pragma once
// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` header a
// client may send and the gateway sends upstream, and the ids it carries.
#include <array>
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>

namespace turnout::tracing {

using TraceId = std::array<std::uint8_t, 16>;
using SpanId = std::array<std::uint8_t, 8>;

struct ParentContext {
  TraceId trace_id{};
  SpanId span_id{};
  bool sampled = false;
};

// A valid traceparent (version 00 exactly; a later version by its first four fields, as
// the spec asks); nullopt for anything else (bad length, upper-case or non-hex digits,
// all-zero ids, version ff), which then starts a new trace.
std::optional<ParentContext> parse_traceparent(std::string_view header);

// "00-<trace id>-<span id>-<01|00>".
std::string format_traceparent(const TraceId& trace_id, const SpanId& span_id, bool sampled);

// Lower-case hex, as traceparent and OTLP/JSON spell ids.
std::string hex_id(std::span<const std::uint8_t> bytes);

// Random non-zero ids.
TraceId random_trace_id(std::mt19937_64& rng);
SpanId random_span_id(std::mt19937_64& rng);

// Whether a new trace is kept at `ratio` (0..1), decided on the trace id like
// OpenTelemetry's TraceIdRatioBased sampler, so every service sharing the id agrees.
bool sampled_at_ratio(const TraceId& trace_id, double ratio);

}  // namespace turnout::tracing
