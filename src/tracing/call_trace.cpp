#include "tracing/call_trace.hpp"

#include <utility>

namespace turnout::tracing {

std::int64_t unix_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void CallTrace::begin(const std::optional<ParentContext>& parent, double ratio, std::mt19937_64& rng,
                      std::string root_name, std::int64_t started_unix_ns) {
  active_ = true;
  rng_ = &rng;
  continues_client_ = parent.has_value();
  trace_id_ = parent ? parent->trace_id : random_trace_id(rng);
  // Parent-based: a client's decision is kept, so its trace is whole or absent; a ratio
  // of 0 turns sampling off altogether.
  sampled_ = ratio > 0 && (parent ? parent->sampled : sampled_at_ratio(trace_id_, ratio));
  root_span_id_ = random_span_id(rng);
  if (!sampled_) return;
  Span root;
  root.span_id = root_span_id_;
  if (parent) root.parent_span_id = parent->span_id;
  root.name = std::move(root_name);
  root.kind = SpanKind::server;
  root.start_unix_ns = started_unix_ns;
  spans_.reserve(8);
  spans_.push_back(std::move(root));
}

std::size_t CallTrace::start(std::string name, SpanKind kind, std::size_t parent) {
  if (!sampled_ || parent >= spans_.size()) return kNone;
  Span span;
  span.span_id = random_span_id(*rng_);
  span.parent_span_id = spans_[parent].span_id;
  span.name = std::move(name);
  span.kind = kind;
  span.start_unix_ns = unix_now_ns();
  spans_.push_back(std::move(span));
  return spans_.size() - 1;
}

void CallTrace::end(std::size_t span) {
  if (span < spans_.size() && spans_[span].end_unix_ns == 0) spans_[span].end_unix_ns = unix_now_ns();
}

void CallTrace::set(std::size_t span, std::string key, AttributeValue value) {
  if (span < spans_.size()) spans_[span].attributes.push_back(Attribute{std::move(key), std::move(value)});
}

void CallTrace::fail(std::size_t span, std::string message) {
  if (span >= spans_.size()) return;
  spans_[span].error = true;
  spans_[span].status_message = std::move(message);
}

std::string CallTrace::traceparent(std::size_t span) const {
  const SpanId& id = span < spans_.size() ? spans_[span].span_id : root_span_id_;
  return format_traceparent(trace_id_, id, sampled_);
}

Trace CallTrace::take() {
  Trace trace;
  trace.trace_id = trace_id_;
  const std::int64_t now = unix_now_ns();
  for (Span& span : spans_) {
    if (span.end_unix_ns == 0) span.end_unix_ns = now;
  }
  trace.spans = std::exchange(spans_, {});
  active_ = false;
  sampled_ = false;
  continues_client_ = false;
  return trace;
}

}  // namespace turnout::tracing
