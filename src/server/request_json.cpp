#include "server/request_json.hpp"

#include "common/json_text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

namespace turnout::server {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

const char* type_name(element_type t) {
  switch (t) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::INT64:
    case element_type::UINT64: return "an integer";
    case element_type::DOUBLE: return "a number";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

// A key that occurs more than once among `object`'s members (keys compared unescaped).
// `keys` is scratch, reused across requests; sorting keeps many-member objects O(n log n).
std::optional<std::string_view> first_duplicate_key(simdjson::dom::object object, std::vector<std::string_view>& keys) {
  keys.clear();
  for (auto [key, value] : object) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  const auto duplicate = std::adjacent_find(keys.begin(), keys.end());
  if (duplicate == keys.end()) return std::nullopt;
  return *duplicate;
}

}  // namespace

RequestError type_error(std::string param, const char* expected, simdjson::dom::element e) {
  return RequestError{fmt::format("Invalid type for '{}': expected {}, but got {}.", param, expected,
                                  type_name(e.type())),
                      std::move(param), "invalid_type"};
}

std::variant<simdjson::dom::element, RequestError> parse_json_body(simdjson::dom::parser& parser,
                                                                   std::string& repaired,
                                                                   std::vector<std::string_view>& key_scratch,
                                                                   std::string_view body) {
  auto doc = parser.parse(body.data(), body.size());
  if (doc.error() == simdjson::STRING_ERROR) {
    // Possibly a lone surrogate escape, which tiktoken reads as U+FFFD: repair and retry.
    repaired.assign(body);
    if (replace_lone_surrogate_escapes(repaired)) doc = parser.parse(repaired);
  }
  if (doc.error() == simdjson::UTF8_ERROR)
    return RequestError{"The request body is not valid UTF-8.", "", "invalid_utf8"};
  if (doc.error())
    return RequestError{
        fmt::format("We could not parse the JSON body of your request ({}).", simdjson::error_message(doc.error())),
        "", "invalid_json"};
  element root = doc.value_unsafe();
  if (!root.is_object())
    return RequestError{"The request body must be a JSON object.", "", "invalid_type"};
  if (auto duplicate = first_duplicate_key(root.get_object().value_unsafe(), key_scratch))
    return RequestError{fmt::format("Invalid request: the key '{}' appears more than once in the request body.",
                                    *duplicate),
                        std::string(*duplicate), "duplicate_key"};
  return root;
}

RequestError missing_parameter(std::string param) {
  return RequestError{fmt::format("Missing required parameter: '{}'.", param), std::move(param),
                      "missing_required_parameter"};
}

std::optional<RequestError> read_model_name(element root, std::optional<std::string_view>& out) {
  auto field = root["model"];
  if (field.error() || field.value_unsafe().is_null()) return std::nullopt;
  const element model = field.value_unsafe();
  if (!model.is_string()) return type_error("model", "a string", model);
  const std::string_view name = model.get_string().value_unsafe();
  if (std::any_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
    return RequestError{"Invalid 'model': control characters are not allowed in a model name.", "model",
                        "invalid_value"};
  out = name;
  return std::nullopt;
}

std::optional<RequestError> read_bool(element root, std::string_view key, bool& out) {
  auto field = root[key];
  if (field.error() || field.value_unsafe().is_null()) return std::nullopt;
  if (!field.value_unsafe().is_bool()) return type_error(std::string(key), "a boolean", field.value_unsafe());
  out = field.value_unsafe().get_bool().value_unsafe();
  return std::nullopt;
}

std::optional<RequestError> read_non_negative_integer(element root, std::string_view key,
                                                      std::optional<std::uint64_t>& out) {
  auto field = root[key];
  if (field.error() || field.value_unsafe().is_null()) return std::nullopt;
  const element value = field.value_unsafe();
  if (value.is_uint64()) {
    out = value.get_uint64().value_unsafe();
    return std::nullopt;
  }
  if (value.is_int64())
    return RequestError{fmt::format("Invalid '{}': integer below minimum value 0.", key), std::string(key),
                        "integer_below_min_value"};
  return type_error(std::string(key), "an integer", value);
}

}  // namespace turnout::server
