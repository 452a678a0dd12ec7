#pragma once
// The spans of one call, recorded in the call's own memory as it runs (no locks, no
// I/O) and handed to the exporter whole when the call ends. A call that is not sampled
// records nothing but still has a trace id and a span id, so that the upstream's
// traceparent continues the client's trace. Attributes never carry prompt or completion
// text: only names, counts, statuses and money.
#include "tracing/trace_context.hpp"

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace turnout::tracing {

enum class SpanKind { internal = 1, server = 2, client = 3 };  // OTLP's numbers

using AttributeValue = std::variant<std::string, std::int64_t, double, bool>;

struct Attribute {
  std::string key;
  AttributeValue value;
};

struct Span {
  SpanId span_id{};
  std::optional<SpanId> parent_span_id;
  std::string name;
  SpanKind kind = SpanKind::internal;
  std::int64_t start_unix_ns = 0;
  std::int64_t end_unix_ns = 0;
  bool error = false;  // OTLP status ERROR; otherwise UNSET
  std::string status_message;
  std::vector<Attribute> attributes;
};

struct Trace {
  TraceId trace_id{};
  std::vector<Span> spans;  // the root (server) span first
};

std::int64_t unix_now_ns();

class CallTrace {
 public:
  static constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();

  // Starts the call's trace and its root span (`root_name`, kind server, begun at
  // `started_unix_ns`): continues `parent` when the client sent one (its sampled flag
  // decides), else a new trace id sampled at `ratio`.
  void begin(const std::optional<ParentContext>& parent, double ratio, std::mt19937_64& rng, std::string root_name,
             std::int64_t started_unix_ns);

  bool active() const { return active_; }    // begin() was called (tracing is on)
  bool sampled() const { return sampled_; }  // spans are being recorded
  // The trace continues the client's traceparent (so its tracestate goes along upstream).
  bool continues_client() const { return continues_client_; }

  // A span under `parent` (the root by default); kNone when not sampled. Every other
  // member accepts kNone and then does nothing.
  std::size_t start(std::string name, SpanKind kind, std::size_t parent = 0);
  void end(std::size_t span);
  void set(std::size_t span, std::string key, AttributeValue value);
  void fail(std::size_t span, std::string message);

  // The traceparent to send with `span`'s outgoing request (the root's when kNone).
  std::string traceparent(std::size_t span) const;

  // The finished trace (the root ended now if still open); leaves this inactive.
  Trace take();

 private:
  bool active_ = false;
  bool sampled_ = false;
  bool continues_client_ = false;
  TraceId trace_id_{};
  SpanId root_span_id_{};
  std::vector<Span> spans_;
  std::mt19937_64* rng_ = nullptr;  // the worker's; used only on its thread
};

}  // namespace turnout::tracing
