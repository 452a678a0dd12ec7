// W3C traceparent parsing and formatting, ratio sampling, a call's span tree, and the
// OTLP/JSON encoding a collector reads.
#include "tracing/call_trace.hpp"
#include "tracing/otlp_json.hpp"
#include "tracing/trace_context.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <string>

namespace turnout::tracing {
namespace {

constexpr std::string_view kValid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(Traceparent, AValidHeaderRoundTrips) {
  auto parent = parse_traceparent(kValid);
  ASSERT_TRUE(parent);
  EXPECT_TRUE(parent->sampled);
  EXPECT_EQ(hex_id(parent->trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(hex_id(parent->span_id), "00f067aa0ba902b7");
  EXPECT_EQ(format_traceparent(parent->trace_id, parent->span_id, true), kValid);
  EXPECT_FALSE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")->sampled);
}

TEST(Traceparent, InvalidHeadersAreIgnored) {
  for (const std::string_view bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",         // no flags
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",      // upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",      // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",      // zero span id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",      // version ff
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",    // version 00 is exact
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",      // separator
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",      // not hex
       }) {
    EXPECT_FALSE(parse_traceparent(bad)) << bad;
  }
  // A later version is read by its first four fields.
  EXPECT_TRUE(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"));
}

TEST(Sampling, RatioDecidesOnTheTraceIdAndZeroKeepsNothing) {
  std::mt19937_64 rng(7);
  int kept = 0;
  for (int i = 0; i < 10000; ++i) {
    const TraceId id = random_trace_id(rng);
    EXPECT_FALSE(sampled_at_ratio(id, 0));
    EXPECT_TRUE(sampled_at_ratio(id, 1));
    kept += sampled_at_ratio(id, 0.25) ? 1 : 0;
  }
  EXPECT_NEAR(kept, 2500, 300);
}

TEST(CallTrace, ContinuesTheClientTraceAndKeepsItsDecision) {
  std::mt19937_64 rng(1);
  CallTrace trace;
  trace.begin(parse_traceparent(kValid), 0.0001, rng, "POST /v1/chat/completions", unix_now_ns());
  EXPECT_TRUE(trace.sampled()) << "the client's sampled flag decides";
  const std::size_t route = trace.start("route", SpanKind::internal);
  const std::size_t count = trace.start("count", SpanKind::internal, route);
  trace.end(count);
  trace.end(route);
  const std::size_t attempt = trace.start("chat gpt-4o", SpanKind::client);
  EXPECT_EQ(trace.traceparent(attempt).substr(0, 36), "00-4bf92f3577b34da6a3ce929d0e0e4736-");
  const Trace done = trace.take();
  ASSERT_EQ(done.spans.size(), 4u);
  EXPECT_EQ(hex_id(*done.spans[0].parent_span_id), "00f067aa0ba902b7");
  EXPECT_EQ(*done.spans[2].parent_span_id, done.spans[1].span_id);
  EXPECT_EQ(*done.spans[3].parent_span_id, done.spans[0].span_id);
  for (const Span& span : done.spans) EXPECT_GE(span.end_unix_ns, span.start_unix_ns);
  EXPECT_FALSE(trace.active());
}

TEST(CallTrace, UnsampledRecordsNothingButStillPropagates) {
  std::mt19937_64 rng(1);
  CallTrace trace;
  trace.begin(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"), 1, rng, "root", 0);
  EXPECT_FALSE(trace.sampled());
  const std::size_t span = trace.start("chat x", SpanKind::client);
  EXPECT_EQ(span, CallTrace::kNone);
  trace.set(span, "k", std::string("v"));
  const std::string header = trace.traceparent(span);
  EXPECT_EQ(header.substr(0, 36), "00-4bf92f3577b34da6a3ce929d0e0e4736-");
  EXPECT_EQ(header.substr(52), "-00");
  EXPECT_TRUE(trace.take().spans.empty());

  CallTrace off;
  off.begin(std::nullopt, 0, rng, "root", 0);
  EXPECT_FALSE(off.sampled());
}

// Whether the client's tracestate may go upstream: only while its trace is continued.
TEST(CallTrace, ContinuesTheClientOnlyWithAValidTraceparent) {
  std::mt19937_64 rng(1);
  CallTrace trace;
  trace.begin(parse_traceparent(kValid), 1, rng, "root", 0);
  EXPECT_TRUE(trace.continues_client());
  trace.take();
  EXPECT_FALSE(trace.continues_client());
  trace.begin(parse_traceparent("00-zz-not-a-trace"), 1, rng, "root", 0);
  EXPECT_FALSE(trace.continues_client());
  trace.take();
  trace.begin(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"), 1, rng, "root", 0);
  EXPECT_TRUE(trace.continues_client()) << "an unsampled client trace is still the client's";
}

TEST(OtlpJson, EncodesTheExportRequestShape) {
  Trace trace;
  trace.trace_id = parse_traceparent(kValid)->trace_id;
  Span root;
  root.span_id = parse_traceparent(kValid)->span_id;
  root.name = "POST \"/v1\"";
  root.kind = SpanKind::server;
  root.start_unix_ns = 1700000000000000001;
  root.end_unix_ns = 1700000000000000002;
  root.error = true;
  root.status_message = "upstream_timeout";
  root.attributes = {{"s", std::string("x")}, {"i", std::int64_t{9007199254740993}}, {"d", 0.5}, {"b", true}};
  trace.spans.push_back(root);
  const std::string text = encode_otlp_json(Resource{"svc", "inst", "1.0"}, {trace});
  const auto doc = boost::json::parse(text);
  const auto& rs = doc.at("resourceSpans").at(0);
  EXPECT_EQ(rs.at("resource").at("attributes").at(0).at("key"), "service.name");
  EXPECT_EQ(rs.at("resource").at("attributes").at(0).at("value").at("stringValue"), "svc");
  const auto& span = rs.at("scopeSpans").at(0).at("spans").at(0);
  EXPECT_EQ(span.at("traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(span.at("spanId"), "00f067aa0ba902b7");
  EXPECT_FALSE(span.as_object().contains("parentSpanId"));
  EXPECT_EQ(span.at("name"), "POST \"/v1\"");
  EXPECT_EQ(span.at("kind"), 2);
  EXPECT_EQ(span.at("startTimeUnixNano"), "1700000000000000001");
  EXPECT_EQ(span.at("status").at("code"), 2);
  const auto& attributes = span.at("attributes");
  EXPECT_EQ(attributes.at(1).at("value").at("intValue"), "9007199254740993");
  EXPECT_EQ(attributes.at(2).at("value").at("doubleValue"), 0.5);
  EXPECT_EQ(attributes.at(3).at("value").at("boolValue"), true);
}

}  // namespace
}  // namespace turnout::tracing
