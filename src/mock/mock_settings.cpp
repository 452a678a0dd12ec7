#include "mock/mock_settings.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <limits>

namespace turnout::mock {
namespace json = boost::json;

bool FaultSettings::any_fault() const {
  return fail_status || html_error || hang || malformed || no_usage || reset_after_chunks ||
         stall_after_chunks;
}

bool FaultSettings::applies_to(std::string_view model) const {
  return fault_models.empty() ||
         std::find(fault_models.begin(), fault_models.end(), model) != fault_models.end();
}

bool FaultSettings::selects(std::uint64_t call_index, double uniform01) const {
  if (fail_first) {
    if (call_index < *fail_first) return true;
    return fail_rate && uniform01 < *fail_rate;
  }
  if (fail_rate) return uniform01 < *fail_rate;
  return true;
}

namespace {

// One setter per control-API key; each reads the JSON value into `out` or says why not.
template <class Int>
Result<Int> read_integer(std::string_view key, const json::value& v) {
  const auto* as_int = v.if_int64();
  const auto* as_uint = v.if_uint64();
  if (!as_int && !as_uint) return make_error(fmt::format("{}: expected a non-negative integer", key));
  if (as_int && *as_int < 0) return make_error(fmt::format("{}: must not be negative", key));
  const std::uint64_t value = as_int ? static_cast<std::uint64_t>(*as_int) : *as_uint;
  if (value > std::numeric_limits<Int>::max()) return make_error(fmt::format("{}: too large", key));
  return static_cast<Int>(value);
}

Result<bool> read_bool(std::string_view key, const json::value& v) {
  if (!v.is_bool()) return make_error(fmt::format("{}: expected true or false", key));
  return v.get_bool();
}

Result<double> read_number(std::string_view key, const json::value& v) {
  if (!v.is_number()) return make_error(fmt::format("{}: expected a number", key));
  return v.to_number<double>();
}

// Retry-After may be given in seconds (number) or verbatim (string, e.g. an HTTP date).
Result<std::string> read_retry_after(const json::value& v) {
  // Error is constructible from a string too, so successes are built explicitly.
  const auto ok = [](std::string value) { return Result<std::string>(boost::system::in_place_value, std::move(value)); };
  if (v.is_string()) return ok(std::string(v.get_string()));
  if (v.is_int64() || v.is_uint64()) return ok(json::serialize(v));
  if (v.is_null()) return ok({});
  return make_error("retry_after: expected seconds (integer) or a string");
}

Result<std::vector<std::string>> read_models(const json::value& v) {
  std::vector<std::string> models;
  if (v.is_null()) return models;
  const auto* list = v.if_array();
  if (!list) return make_error("fault_models: expected an array of model names");
  for (const auto& item : *list) {
    if (!item.is_string()) return make_error("fault_models: every entry must be a string");
    models.emplace_back(item.get_string());
  }
  return models;
}

template <class T>
Result<void> assign(Result<T> parsed, T& out) {
  if (!parsed) return parsed.error();
  out = std::move(*parsed);
  return {};
}

template <class T>
Result<void> assign_optional(std::string_view key, const json::value& v, std::optional<T>& out,
                             Result<T> (*read)(std::string_view, const json::value&)) {
  if (v.is_null()) {
    out.reset();
    return {};
  }
  auto parsed = read(key, v);
  if (!parsed) return parsed.error();
  out = *parsed;
  return {};
}

Result<void> apply_key(std::string_view key, const json::value& v, MockSettings& s) {
  ReplySettings& reply = s.reply;
  FaultSettings& faults = s.faults;
  if (key == "chunks") return assign(read_integer<std::uint32_t>(key, v), reply.chunks);
  if (key == "chunk_delay_ms") return assign(read_integer<std::uint32_t>(key, v), reply.chunk_delay_ms);
  if (key == "completion_words") return assign(read_integer<std::uint32_t>(key, v), reply.completion_words);
  if (key == "cached_tokens") return assign(read_integer<std::uint64_t>(key, v), reply.cached_tokens);
  if (key == "fault_models") return assign(read_models(v), faults.fault_models);
  if (key == "latency_ms") return assign(read_integer<std::uint32_t>(key, v), faults.latency_ms);
  if (key == "latency_jitter_ms") return assign(read_integer<std::uint32_t>(key, v), faults.latency_jitter_ms);
  if (key == "fail_first") return assign_optional(key, v, faults.fail_first, &read_integer<std::uint64_t>);
  if (key == "fail_rate") return assign_optional(key, v, faults.fail_rate, &read_number);
  if (key == "fail_status") return assign_optional(key, v, faults.fail_status, &read_integer<unsigned>);
  if (key == "retry_after") return assign(read_retry_after(v), faults.retry_after);
  if (key == "html_error") return assign(read_bool(key, v), faults.html_error);
  if (key == "hang") return assign(read_bool(key, v), faults.hang);
  if (key == "malformed") return assign(read_bool(key, v), faults.malformed);
  if (key == "no_usage") return assign(read_bool(key, v), faults.no_usage);
  if (key == "reset_after_chunks")
    return assign_optional(key, v, faults.reset_after_chunks, &read_integer<std::uint32_t>);
  if (key == "stall_after_chunks")
    return assign_optional(key, v, faults.stall_after_chunks, &read_integer<std::uint32_t>);
  return make_error(fmt::format("unknown setting '{}'", key));
}

template <class T>
json::value optional_to_json(const std::optional<T>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

}  // namespace

Result<void> validate_settings(const MockSettings& s) {
  // Streams are generated whole before the first byte, so both stay modest.
  if (s.reply.chunks == 0 || s.reply.chunks > 10000) return make_error("chunks: must be 1..10000");
  if (s.reply.completion_words > 100000) return make_error("completion_words: must be at most 100000");
  if (s.faults.fail_rate && !(*s.faults.fail_rate >= 0.0 && *s.faults.fail_rate <= 1.0))
    return make_error("fail_rate: must be between 0 and 1");
  if (s.faults.fail_status && (*s.faults.fail_status < 400 || *s.faults.fail_status > 599))
    return make_error("fail_status: must be an HTTP error status (400..599)");
  if (s.faults.retry_after.find_first_of("\r\n") != std::string::npos)
    return make_error("retry_after: must be a single line");
  return {};
}

Result<MockSettings> settings_from_json(const json::value& body, const MockSettings& base) {
  const auto* fields = body.if_object();
  if (!fields) return make_error("the settings must be a JSON object");
  MockSettings settings = base;
  for (const auto& field : *fields) {
    auto applied = apply_key(field.key(), field.value(), settings);
    if (!applied) return applied.error();
  }
  auto valid = validate_settings(settings);
  if (!valid) return valid.error();
  return settings;
}

json::object settings_to_json(const MockSettings& s) {
  json::array models;
  for (const auto& m : s.faults.fault_models) models.emplace_back(m);
  return json::object{
      {"chunks", s.reply.chunks},
      {"chunk_delay_ms", s.reply.chunk_delay_ms},
      {"completion_words", s.reply.completion_words},
      {"cached_tokens", s.reply.cached_tokens},
      {"fault_models", std::move(models)},
      {"latency_ms", s.faults.latency_ms},
      {"latency_jitter_ms", s.faults.latency_jitter_ms},
      {"fail_first", optional_to_json(s.faults.fail_first)},
      {"fail_rate", optional_to_json(s.faults.fail_rate)},
      {"fail_status", optional_to_json(s.faults.fail_status)},
      {"retry_after", s.faults.retry_after},
      {"html_error", s.faults.html_error},
      {"hang", s.faults.hang},
      {"malformed", s.faults.malformed},
      {"no_usage", s.faults.no_usage},
      {"reset_after_chunks", optional_to_json(s.faults.reset_after_chunks)},
      {"stall_after_chunks", optional_to_json(s.faults.stall_after_chunks)},
  };
}

}  // namespace turnout::mock
