#pragma once
// The built-in default config (docs/REFERENCE.md §3.2) read with an empty environment:
// what the unit tests of the stages after config start from and edit.
#include "config/config.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

namespace turnout::test {

inline config::Config built_in_config() {
  auto config = config::default_config([](std::string_view) -> std::optional<std::string> { return std::nullopt; });
  EXPECT_TRUE(config) << config.error().message;
  return std::move(config).value();
}

}  // namespace turnout::test
