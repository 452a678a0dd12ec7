#pragma once
// Function tool definitions flattened for the count formula (tokenizer::ToolView), shared
// by the chat parser (`tools[].function`) and the Responses parser (`tools[]` itself).
// The views point into the JSON document and into this object's vectors.
#include "tokenizer/chat_count.hpp"

#include <simdjson.h>

#include <span>
#include <string_view>
#include <vector>

namespace turnout::server {

class ToolDefinitions {
 public:
  void clear();
  // Adds one function: `name`, and `description` and `parameters.properties` from
  // `function` when they are there (anything else in it is not counted).
  void add_function(std::string_view name, simdjson::dom::element function);
  // The definitions added since clear(); valid until the next add_function or clear.
  std::span<const tokenizer::ToolView> views();

 private:
  struct Range {
    std::size_t begin, end;
  };
  std::vector<tokenizer::ToolView> tools_;
  std::vector<tokenizer::ToolPropertyView> properties_;
  std::vector<std::string_view> enum_values_;
  std::vector<Range> property_ranges_;  // per tool
  std::vector<Range> enum_ranges_;      // per property
};

}  // namespace turnout::server
