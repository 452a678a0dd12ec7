// The `telemetry` section (docs/REFERENCE.md §3.9): off by default, each key validated.
#include "config/config.hpp"

#include <gtest/gtest.h>

#include <string>

namespace turnout::config {
namespace {

EnvLookup no_env() {
  return [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
}

std::string error_of(std::string_view yaml) {
  auto config = parse_config(yaml, "test.yaml", no_env());
  EXPECT_FALSE(config) << "accepted:\n" << yaml;
  return config ? std::string() : config.error().message;
}

TEST(TelemetryConfig, OffByDefault) {
  auto config = parse_config("", "test.yaml", no_env());
  ASSERT_TRUE(config);
  EXPECT_EQ(config->telemetry.otlp_endpoint, "");
  EXPECT_EQ(config->telemetry.sample_ratio, 1.0);
  EXPECT_EQ(config->telemetry.service_name, "turnout");
}

TEST(TelemetryConfig, ReadsEachKey) {
  auto config = parse_config(
      "telemetry:\n  otlp_endpoint: http://collector:4318/otlp/\n  sample_ratio: 0.25\n  service_name: gw\n",
      "test.yaml", no_env());
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->telemetry.otlp_endpoint, "http://collector:4318/otlp") << "the trailing slash is dropped";
  EXPECT_EQ(config->telemetry.sample_ratio, 0.25);
  EXPECT_EQ(config->telemetry.service_name, "gw");
}

TEST(TelemetryConfig, RefusesBadValuesNamingTheKey) {
  EXPECT_NE(error_of("telemetry:\n  sample_ratio: 1.5\n").find("telemetry.sample_ratio"), std::string::npos);
  EXPECT_NE(error_of("telemetry:\n  sample_ratio: -0.1\n").find("telemetry.sample_ratio"), std::string::npos);
  EXPECT_NE(error_of("telemetry:\n  sample_ratio: .nan\n").find("telemetry.sample_ratio"), std::string::npos);
  EXPECT_NE(error_of("telemetry:\n  otlp_endpoint: grpc://c:4317\n").find("telemetry.otlp_endpoint"), std::string::npos);
  EXPECT_NE(error_of("telemetry:\n  otlp_endpoint: http://c:4318?x=1\n").find("telemetry.otlp_endpoint"),
            std::string::npos);
  EXPECT_NE(error_of("telemetry:\n  service_name: \"\"\n").find("telemetry.service_name"), std::string::npos);
  EXPECT_NE(error_of("telemetry:\n  sample: 1\n").find("telemetry.sample"), std::string::npos);
}

}  // namespace
}  // namespace turnout::config
