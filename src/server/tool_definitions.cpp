#include "server/tool_definitions.hpp"

namespace turnout::server {

using simdjson::dom::element;

void ToolDefinitions::clear() {
  tools_.clear();
  properties_.clear();
  enum_values_.clear();
  property_ranges_.clear();
  enum_ranges_.clear();
}

void ToolDefinitions::add_function(std::string_view name, element function) {
  tokenizer::ToolView tool;
  tool.name = name;
  if (auto d = function["description"]; !d.error() && d.value_unsafe().is_string())
    tool.description = d.value_unsafe().get_string().value_unsafe();
  Range tool_range{properties_.size(), properties_.size()};
  if (auto params = function["parameters"]; !params.error() && params.value_unsafe().is_object()) {
    if (auto props = params.value_unsafe()["properties"]; !props.error() && props.value_unsafe().is_object()) {
      const simdjson::dom::object prop_object = props.value_unsafe().get_object().value_unsafe();
      for (auto [key, value] : prop_object) {
        tokenizer::ToolPropertyView property;
        property.name = key;
        Range enum_range{enum_values_.size(), enum_values_.size()};
        if (value.is_object()) {
          if (auto t = value["type"]; !t.error() && t.value_unsafe().is_string())
            property.type = t.value_unsafe().get_string().value_unsafe();
          if (auto d = value["description"]; !d.error() && d.value_unsafe().is_string())
            property.description = d.value_unsafe().get_string().value_unsafe();
          if (auto e = value["enum"]; !e.error() && e.value_unsafe().is_array()) {
            const simdjson::dom::array enum_array = e.value_unsafe().get_array().value_unsafe();
            for (element item : enum_array)
              if (item.is_string()) enum_values_.push_back(item.get_string().value_unsafe());
          }
        }
        enum_range.end = enum_values_.size();
        properties_.push_back(property);
        enum_ranges_.push_back(enum_range);
      }
    }
  }
  tool_range.end = properties_.size();
  tools_.push_back(tool);
  property_ranges_.push_back(tool_range);
}

std::span<const tokenizer::ToolView> ToolDefinitions::views() {
  // Spans are set only now: the vectors may have moved while definitions were added.
  for (std::size_t i = 0; i < properties_.size(); ++i)
    properties_[i].enum_values = std::span<const std::string_view>(enum_values_)
                                     .subspan(enum_ranges_[i].begin, enum_ranges_[i].end - enum_ranges_[i].begin);
  for (std::size_t i = 0; i < tools_.size(); ++i)
    tools_[i].properties = std::span<const tokenizer::ToolPropertyView>(properties_)
                               .subspan(property_ranges_[i].begin, property_ranges_[i].end - property_ranges_[i].begin);
  return tools_;
}

}  // namespace turnout::server
