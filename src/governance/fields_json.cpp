#include "governance/fields_json.hpp"

#include "common/time_text.hpp"
#include "governance/record_json.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <charconv>
#include <cmath>

namespace turnout::governance {
namespace {

namespace od = simdjson::ondemand;

constexpr std::size_t kMaxModels = 1000;  // the store checks the same bound; this one stops the parse early

FieldError field_error(std::string_view param, std::string message) {
  return FieldError{std::string(param), fmt::format("'{}' {}", param, message)};
}

Result<std::string, FieldError> string_value(od::value& value, std::string_view param) {
  std::string_view text;
  if (value.get_string().get(text) != simdjson::SUCCESS) return field_error(param, "must be a string");
  return Result<std::string, FieldError>(boost::system::in_place_value, text);
}

Result<std::vector<std::string>, FieldError> models_value(od::value& value) {
  od::array array;
  if (value.get_array().get(array) != simdjson::SUCCESS) return field_error("models", "must be an array of model names");
  std::vector<std::string> models;
  for (auto item : array) {
    std::string_view name;
    if (item.get_string().get(name) != simdjson::SUCCESS)
      return field_error("models", "must be an array of model names (strings)");
    if (models.size() == kMaxModels) return field_error("models", fmt::format("may list at most {} models", kMaxModels));
    models.emplace_back(name);
  }
  return models;
}

// A positive integer, as JSON's number (not a string).
Result<std::uint64_t, FieldError> count_value(od::value& value, std::string_view param) {
  std::uint64_t count = 0;
  if (value.get_uint64().get(count) != simdjson::SUCCESS || count == 0)
    return field_error(param, "must be a positive integer");
  return count;
}

// Dollars as a JSON number or a decimal string, read from its text so 0.01 stays exact.
Result<std::int64_t, FieldError> usd_value(od::value& value) {
  std::string_view text;
  od::json_type type{};
  if (value.type().get(type) != simdjson::SUCCESS) return field_error("budget_usd", "must be a number of US dollars");
  if (type == od::json_type::string) {
    if (value.get_string().get(text) != simdjson::SUCCESS) return field_error("budget_usd", "must be a number");
  } else if (type == od::json_type::number) {
    text = value.raw_json_token();
    while (!text.empty() && (text.back() == ' ' || text.back() == '\n' || text.back() == '\t' || text.back() == '\r'))
      text.remove_suffix(1);
  } else {
    return field_error("budget_usd", "must be a number of US dollars such as 0.01 or 25");
  }
  auto pico = parse_usd(text);
  if (!pico) return field_error("budget_usd", pico.error().message);
  return *pico;
}

Result<std::int64_t, FieldError> time_value(od::value& value, std::string_view param) {
  std::string_view text;
  if (value.get_string().get(text) != simdjson::SUCCESS)
    return field_error(param, "must be an RFC 3339 time such as \"2027-01-01T00:00:00Z\"");
  const auto seconds = parse_time_param(text);
  if (!seconds) return field_error(param, "must be an RFC 3339 time such as \"2027-01-01T00:00:00Z\"");
  return static_cast<std::int64_t>(std::llround(*seconds * 1000));
}

// Sets `change` from `value` (null clears, on an update) through `read`.
template <class T, class Read>
std::optional<FieldError> set_change(Change<T>& change, od::value& value, bool is_null, bool update, Read read) {
  if (is_null) {
    change.clear = update;
    return std::nullopt;
  }
  auto read_value = read(value);
  if (!read_value) return read_value.error();
  change.value = std::move(*read_value);
  return std::nullopt;
}

// One member of the body into `fields`; an error names it.
std::optional<FieldError> apply_member(Fields& fields, std::string_view name, od::value& value, FieldsFor what,
                                       bool update) {
  bool is_null = false;
  if (value.is_null().get(is_null) != simdjson::SUCCESS) return field_error(name, "is not valid JSON");
  const auto required_string = [&](std::optional<std::string>& target) -> std::optional<FieldError> {
    if (is_null) return field_error(name, "cannot be null");
    auto text = string_value(value, name);
    if (!text) return text.error();
    target = std::move(*text);
    return std::nullopt;
  };
  const auto count = [&](std::string_view param) {
    return [param](od::value& v) { return count_value(v, param); };
  };
  if (name == "name") return required_string(fields.name);
  if (name == "timezone") return required_string(fields.timezone);
  if (name == "budget_period") {
    std::optional<std::string> text;
    if (auto failed = required_string(text)) return failed;
    fields.budget_period = parse_budget_period(*text);
    if (!fields.budget_period) return field_error(name, "must be one of day, week, month, lifetime");
    return std::nullopt;
  }
  if (name == "team" && what == FieldsFor::key)
    return set_change(fields.team, value, is_null, update, [](od::value& v) { return string_value(v, "team"); });
  if (name == "models") return set_change(fields.models, value, is_null, update, models_value);
  if (name == "expires_at")
    return set_change(fields.expires_at_ms, value, is_null, update,
                      [](od::value& v) { return time_value(v, "expires_at"); });
  if (name == "budget_usd") return set_change(fields.budget_pico, value, is_null, update, usd_value);
  if (name == "rpm") return set_change(fields.rpm, value, is_null, update, count("rpm"));
  if (name == "tpm") return set_change(fields.tpm, value, is_null, update, count("tpm"));
  if (name == "max_parallel") return set_change(fields.max_parallel, value, is_null, update, count("max_parallel"));
  return field_error(name.substr(0, 64),
                     what == FieldsFor::key
                         ? "is not a field of keys (name, team, models, expires_at, budget_usd, budget_period, "
                           "timezone, rpm, tpm, max_parallel)"
                         : "is not a field of teams (name, models, expires_at, budget_usd, budget_period, timezone, "
                           "rpm, tpm, max_parallel)");
}

}  // namespace

Result<Fields, FieldError> parse_fields_json(std::string_view body, FieldsFor what, bool update) {
  const FieldError not_object{"", "The body must be a JSON object of fields, e.g. {\"name\": \"billing\"}."};
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    if (update) return not_object;
    return Fields{};  // a create may name nothing (the store then asks for what it needs)
  }
  const simdjson::padded_string padded(body);
  // The DOM parser checks the whole text (On-Demand reads only as far as it is asked, so
  // it would not see trailing garbage); On-Demand then reads the values, numbers as text.
  simdjson::dom::parser validator;
  if (validator.parse(padded).error() != simdjson::SUCCESS) return FieldError{"", "The body is not valid JSON."};
  od::parser parser;
  od::document document;
  od::object object;
  if (parser.iterate(padded).get(document) != simdjson::SUCCESS || document.get_object().get(object) != simdjson::SUCCESS)
    return not_object;
  Fields fields;
  for (auto member : object) {
    std::string_view name;
    od::value value;
    if (member.unescaped_key().get(name) != simdjson::SUCCESS || member.value().get(value) != simdjson::SUCCESS)
      return FieldError{"", "The body is not valid JSON."};
    const std::string owned_name(name);  // the key's buffer is reused by the next member
    if (auto failed = apply_member(fields, owned_name, value, what, update)) return *failed;
  }
  return fields;
}

}  // namespace turnout::governance
