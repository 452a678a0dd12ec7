#include "server/chat_request.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <unordered_set>

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

// A non-negative integer field (max_tokens and friends).
bool read_token_limit(element root, std::string_view key, std::optional<std::uint64_t>& out,
                      RequestError& error) {
  auto field = root[key];
  if (field.error()) return true;  // absent
  element e = field.value_unsafe();
  if (e.is_null()) return true;
  if (e.is_uint64()) {
    out = e.get_uint64().value_unsafe();
    return true;
  }
  if (e.is_int64()) {
    error = RequestError{fmt::format("Invalid '{}': integer below minimum value 0.", key), std::string(key),
                         "integer_below_min_value"};
    return false;
  }
  error = type_error(std::string(key), "an integer", e);
  return false;
}

bool is_known_role(std::string_view role) {
  static constexpr std::array<std::string_view, 6> roles = {"system", "developer", "user",
                                                            "assistant", "tool", "function"};
  for (auto r : roles)
    if (r == role) return true;
  return false;
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

tokenizer::ImageDetail parse_detail(std::string_view d) {
  if (d == "low") return tokenizer::ImageDetail::low;
  if (d == "high") return tokenizer::ImageDetail::high;
  return tokenizer::ImageDetail::automatic;
}

}  // namespace

RequestError type_error(std::string param, const char* expected, simdjson::dom::element e) {
  return RequestError{fmt::format("Invalid type for '{}': expected {}, but got {}.", param, expected,
                                  type_name(e.type())),
                      std::move(param), "invalid_type"};
}

std::variant<simdjson::dom::element, RequestError> parse_json_body(simdjson::dom::parser& parser,
                                                                   std::string& repaired, std::string_view body) {
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
  return root;
}

std::variant<const ChatRequest*, RequestError> RequestParser::parse(std::string_view body) {
  request_ = ChatRequest{};
  messages_.clear();
  parts_.clear();
  tool_calls_.clear();
  tool_definitions_.clear();

  auto parsed_body = parse_json_body(parser_, repaired_, body);
  if (auto* error = std::get_if<RequestError>(&parsed_body)) return std::move(*error);
  element root = std::get<element>(parsed_body);

  // simdjson answers root["stream"] with the first copy of a key while an upstream acts on
  // its last: a duplicate would count, route and bill one request and run another.
  if (auto duplicate = first_duplicate_key(root.get_object().value_unsafe(), top_level_keys_))
    return RequestError{fmt::format("Invalid request: the key '{}' appears more than once in the request body.",
                                    *duplicate),
                        std::string(*duplicate), "duplicate_key"};

  RequestError error;
  if (auto model = root["model"]; !model.error()) {
    element m = model.value_unsafe();
    if (m.is_string()) {
      request_.model = m.get_string().value_unsafe();
      // The model name goes into response headers (x-turnout-model), log lines and
      // metric labels: a control character there could split a header or a line.
      if (std::any_of(request_.model->begin(), request_.model->end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
        return RequestError{"Invalid 'model': control characters are not allowed in a model name.", "model",
                            "invalid_value"};
      }
    } else if (!m.is_null()) {
      return type_error("model", "a string", m);
    }
  }
  if (auto stream = root["stream"]; !stream.error()) {
    element s = stream.value_unsafe();
    if (s.is_bool()) {
      request_.stream = s.get_bool().value_unsafe();
    } else if (!s.is_null()) {
      return type_error("stream", "a boolean", s);
    }
  }
  if (auto opts = root["stream_options"]; !opts.error() && !opts.value_unsafe().is_null()) {
    element o = opts.value_unsafe();
    if (!o.is_object()) return type_error("stream_options", "an object", o);
    if (auto iu = o["include_usage"]; !iu.error() && !iu.value_unsafe().is_null()) {
      if (!iu.value_unsafe().is_bool()) return type_error("stream_options.include_usage", "a boolean", iu.value_unsafe());
      request_.include_usage = iu.value_unsafe().get_bool().value_unsafe();
    }
  }
  std::optional<std::uint64_t> max_tokens, max_completion_tokens;
  if (!read_token_limit(root, "max_tokens", max_tokens, error)) return error;
  if (!read_token_limit(root, "max_completion_tokens", max_completion_tokens, error)) return error;
  request_.requested_output_tokens = max_completion_tokens.value_or(max_tokens.value_or(0));

  auto messages = root["messages"];
  if (messages.error())
    return RequestError{"Missing required parameter: 'messages'.", "messages", "missing_required_parameter"};
  if (!messages.value_unsafe().is_array()) return type_error("messages", "an array", messages.value_unsafe());
  if (!validate_messages(messages.value_unsafe().get_array().value_unsafe(), error)) return error;

  if (auto tools = root["tools"]; !tools.error() && !tools.value_unsafe().is_null()) {
    if (!validate_tools(tools.value_unsafe(), error)) return error;
  }
  request_.prompt.messages = messages_;
  request_.prompt.tools = tool_definitions_.views();
  return &request_;
}

bool RequestParser::validate_messages(simdjson::dom::array messages, RequestError& error) {
  if (messages.size() == 0) {
    error = RequestError{"Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                         "messages", "empty_array"};
    return false;
  }
  // Spans are fixed up after all vectors are filled (they may reallocate while filling).
  struct Ranges {
    std::size_t parts_begin, parts_end, calls_begin, calls_end;
  };
  std::vector<Ranges> ranges;
  ranges.reserve(messages.size());

  std::size_t index = 0;
  for (element msg : messages) {
    const std::string at = fmt::format("messages[{}]", index++);
    if (!msg.is_object()) {
      error = type_error(at, "an object", msg);
      return false;
    }
    tokenizer::MessageView view;
    Ranges r{parts_.size(), parts_.size(), tool_calls_.size(), tool_calls_.size()};

    auto role = msg["role"];
    if (role.error()) {
      error = RequestError{fmt::format("Missing required parameter: '{}.role'.", at), at + ".role",
                           "missing_required_parameter"};
      return false;
    }
    if (!role.value_unsafe().is_string()) {
      error = type_error(at + ".role", "a string", role.value_unsafe());
      return false;
    }
    view.role = role.value_unsafe().get_string().value_unsafe();
    if (!is_known_role(view.role)) {
      error = RequestError{
          fmt::format("Invalid value: '{}'. Supported values are: 'system', 'developer', 'user', 'assistant', 'tool' and 'function'.",
                      view.role),
          at + ".role", "invalid_value"};
      return false;
    }

    auto content = msg["content"];
    const bool content_optional = view.role == "assistant";
    if (content.error() || content.value_unsafe().is_null()) {
      if (!content_optional) {
        error = RequestError{fmt::format("Missing required parameter: '{}.content'.", at), at + ".content",
                             "missing_required_parameter"};
        return false;
      }
    } else if (content.value_unsafe().is_string()) {
      view.content = content.value_unsafe().get_string().value_unsafe();
    } else if (content.value_unsafe().is_array()) {
      std::size_t part_index = 0;
      const simdjson::dom::array part_array = content.value_unsafe().get_array().value_unsafe();
      for (element part : part_array) {
        const std::string part_at = fmt::format("{}.content[{}]", at, part_index++);
        if (!part.is_object()) {
          error = type_error(part_at, "an object", part);
          return false;
        }
        auto type = part["type"];
        if (type.error() || !type.value_unsafe().is_string()) {
          error = RequestError{fmt::format("Missing required parameter: '{}.type'.", part_at), part_at + ".type",
                               "missing_required_parameter"};
          return false;
        }
        const std::string_view type_str = type.value_unsafe().get_string().value_unsafe();
        tokenizer::ContentPartView pv;
        if (type_str == "text") {
          auto text = part["text"];
          if (text.error() || !text.value_unsafe().is_string()) {
            error = RequestError{fmt::format("Invalid '{}.text': expected a string.", part_at), part_at + ".text",
                                 "invalid_type"};
            return false;
          }
          pv.kind = tokenizer::ContentPartView::Kind::text;
          pv.text = text.value_unsafe().get_string().value_unsafe();
        } else if (type_str == "image_url") {
          auto image = part["image_url"];
          element url_el;
          bool ok = !image.error();
          if (ok && image.value_unsafe().is_string()) {
            url_el = image.value_unsafe();
          } else if (ok && image.value_unsafe().is_object()) {
            auto url = image.value_unsafe()["url"];
            ok = !url.error();
            if (ok) url_el = url.value_unsafe();
            if (auto detail = image.value_unsafe()["detail"]; !detail.error() && detail.value_unsafe().is_string())
              pv.detail = parse_detail(detail.value_unsafe().get_string().value_unsafe());
          } else {
            ok = false;
          }
          if (!ok || !url_el.is_string()) {
            error = RequestError{fmt::format("Invalid '{}.image_url': expected an object with a string 'url'.", part_at),
                                 part_at + ".image_url", "invalid_type"};
            return false;
          }
          pv.kind = tokenizer::ContentPartView::Kind::image;
          pv.image_url = url_el.get_string().value_unsafe();
        } else {
          // Audio, files, refusals...: forwarded untouched, not counted as text.
          pv.kind = tokenizer::ContentPartView::Kind::other;
        }
        parts_.push_back(pv);
      }
      r.parts_end = parts_.size();
    } else {
      error = type_error(at + ".content", "a string or an array of content parts", content.value_unsafe());
      return false;
    }

    if (auto name = msg["name"]; !name.error() && !name.value_unsafe().is_null()) {
      if (!name.value_unsafe().is_string()) {
        error = type_error(at + ".name", "a string", name.value_unsafe());
        return false;
      }
      view.name = name.value_unsafe().get_string().value_unsafe();
    }
    if (auto id = msg["tool_call_id"]; !id.error() && !id.value_unsafe().is_null()) {
      if (!id.value_unsafe().is_string()) {
        error = type_error(at + ".tool_call_id", "a string", id.value_unsafe());
        return false;
      }
      view.tool_call_id = id.value_unsafe().get_string().value_unsafe();
    }
    if (auto calls = msg["tool_calls"]; !calls.error() && !calls.value_unsafe().is_null()) {
      if (!calls.value_unsafe().is_array()) {
        error = type_error(at + ".tool_calls", "an array", calls.value_unsafe());
        return false;
      }
      std::size_t call_index = 0;
      const simdjson::dom::array call_array = calls.value_unsafe().get_array().value_unsafe();
      for (element call : call_array) {
        const std::string call_at = fmt::format("{}.tool_calls[{}]", at, call_index++);
        if (!call.is_object()) {
          error = type_error(call_at, "an object", call);
          return false;
        }
        tokenizer::ToolCallView cv;
        if (auto v = call["id"]; !v.error() && v.value_unsafe().is_string()) cv.id = v.value_unsafe().get_string().value_unsafe();
        if (auto v = call["type"]; !v.error() && v.value_unsafe().is_string())
          cv.type = v.value_unsafe().get_string().value_unsafe();
        auto fn = call["function"];
        if (fn.error() || !fn.value_unsafe().is_object()) {
          error = RequestError{fmt::format("Missing required parameter: '{}.function'.", call_at), call_at + ".function",
                               "missing_required_parameter"};
          return false;
        }
        if (auto v = fn.value_unsafe()["name"]; !v.error() && v.value_unsafe().is_string())
          cv.function_name = v.value_unsafe().get_string().value_unsafe();
        if (auto v = fn.value_unsafe()["arguments"]; !v.error() && v.value_unsafe().is_string())
          cv.arguments = v.value_unsafe().get_string().value_unsafe();
        tool_calls_.push_back(cv);
      }
      r.calls_end = tool_calls_.size();
    }
    messages_.push_back(view);
    ranges.push_back(r);
  }
  for (std::size_t i = 0; i < messages_.size(); ++i) {
    const Ranges& r = ranges[i];
    messages_[i].parts = std::span(parts_).subspan(r.parts_begin, r.parts_end - r.parts_begin);
    messages_[i].tool_calls = std::span(tool_calls_).subspan(r.calls_begin, r.calls_end - r.calls_begin);
  }
  return true;
}

bool RequestParser::validate_tools(element tools, RequestError& error) {
  if (!tools.is_array()) {
    error = type_error("tools", "an array", tools);
    return false;
  }
  std::size_t index = 0;
  const simdjson::dom::array tool_array = tools.get_array().value_unsafe();
  for (element tool : tool_array) {
    const std::string at = fmt::format("tools[{}]", index++);
    if (!tool.is_object()) {
      error = type_error(at, "an object", tool);
      return false;
    }
    auto fn = tool["function"];
    if (fn.error() || !fn.value_unsafe().is_object()) {
      // Non-function tools (e.g. custom tools) are forwarded but not counted.
      continue;
    }
    element f = fn.value_unsafe();
    auto name = f["name"];
    if (name.error() || !name.value_unsafe().is_string()) {
      error = RequestError{fmt::format("Missing required parameter: '{}.function.name'.", at), at + ".function.name",
                           "missing_required_parameter"};
      return false;
    }
    tool_definitions_.add_function(name.value_unsafe().get_string().value_unsafe(), f);
  }
  return true;
}

namespace {

// Minimal scanner over JSON that simdjson has already validated: it only needs to find
// where values end, never to report errors.
std::size_t skip_ws(std::string_view s, std::size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i;
}

std::size_t skip_string(std::string_view s, std::size_t i) {  // i at the opening quote
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return s.size();
}

std::size_t skip_value(std::string_view s, std::size_t i) {
  if (i >= s.size()) return i;
  if (s[i] == '"') return skip_string(s, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    for (; i < s.size(); ++i) {
      const char c = s[i];
      if (c == '"') {
        i = skip_string(s, i) - 1;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
    }
    return s.size();
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' &&
         s[i] != '\r' && s[i] != '\t')
    ++i;
  return i;
}

unsigned hex_value(char c) {
  if (c >= '0' && c <= '9') return static_cast<unsigned>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<unsigned>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<unsigned>(c - 'A' + 10);
  return 16;
}

// Compares a raw JSON key (without quotes, possibly escaped) with plain ASCII `name`.
bool key_equals(std::string_view raw, std::string_view name) {
  if (raw.find('\\') == std::string_view::npos) return raw == name;
  std::size_t j = 0;
  for (std::size_t i = 0; i < raw.size(); ++i, ++j) {
    char c = raw[i];
    if (c == '\\' && i + 1 < raw.size()) {
      const char e = raw[++i];
      if (e == 'u' && i + 4 < raw.size()) {
        unsigned v = 0;
        for (int k = 1; k <= 4; ++k) v = v * 16 + hex_value(raw[i + static_cast<std::size_t>(k)]);
        i += 4;
        if (v > 0x7f) return false;  // the names we look for are ASCII
        c = static_cast<char>(v);
      } else {
        c = e;
      }
    }
    if (j >= name.size() || name[j] != c) return false;
  }
  return j == name.size();
}

// A raw JSON key (without quotes, possibly escaped) as UTF-16 code units, so that every
// spelling of one key ("stream", "\u0073tream", "str\u0065am") compares equal. The JSON
// is valid (simdjson checked it), so escapes are well formed.
std::u16string canonical_key(std::string_view raw) {
  std::u16string units;
  units.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size();) {
    if (raw[i] == '\\' && i + 1 < raw.size()) {
      const char e = raw[i + 1];
      if (e == 'u' && i + 5 < raw.size()) {
        unsigned v = 0;
        for (std::size_t k = 2; k < 6; ++k) v = v * 16 + hex_value(raw[i + k]);
        units.push_back(static_cast<char16_t>(v));
        i += 6;
        continue;
      }
      static constexpr std::string_view from = "bfnrt", to = "\b\f\n\r\t";
      const std::size_t mapped = from.find(e);
      units.push_back(static_cast<char16_t>(mapped == std::string_view::npos ? e : to[mapped]));
      i += 2;
      continue;
    }
    // One UTF-8 character to its code point, then to UTF-16.
    const auto lead = static_cast<unsigned char>(raw[i]);
    const std::size_t length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    std::uint32_t cp = length == 1 ? lead : lead & (0x7Fu >> length);
    for (std::size_t k = 1; k < length && i + k < raw.size(); ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(raw[i + k]) & 0x3Fu);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      units.push_back(static_cast<char16_t>(0xD800 + (cp >> 10)));
      units.push_back(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
    } else {
      units.push_back(static_cast<char16_t>(cp));
    }
    i += length;
  }
  return units;
}

}  // namespace

std::string rewrite_top_level(std::string_view json, std::initializer_list<std::string_view> drop,
                              std::string_view extra) {
  std::string out;
  out.reserve(json.size() + extra.size() + 2);
  out.push_back('{');
  bool first = true;
  std::unordered_set<std::u16string> seen;  // keys already forwarded
  std::size_t i = skip_ws(json, 0);
  if (i < json.size() && json[i] == '{') ++i;
  while (true) {
    i = skip_ws(json, i);
    if (i >= json.size() || json[i] == '}') break;
    if (json[i] == ',') {
      ++i;
      continue;
    }
    const std::size_t member_begin = i;
    const std::size_t key_end = skip_string(json, i);
    const std::string_view key = json.substr(member_begin + 1, key_end - member_begin - 2);
    i = skip_ws(json, key_end);
    if (i < json.size() && json[i] == ':') ++i;
    i = skip_ws(json, i);
    const std::size_t value_end = skip_value(json, i);
    bool dropped = false;
    for (std::string_view d : drop) dropped = dropped || key_equals(key, d);
    if (!dropped) {
      dropped = !seen.insert(canonical_key(key)).second;
    }
    if (!dropped) {
      if (!first) out.push_back(',');
      out.append(json.substr(member_begin, value_end - member_begin));
      first = false;
    }
    i = value_end;
  }
  if (!extra.empty()) {
    if (!first) out.push_back(',');
    out.append(extra);
  }
  out.push_back('}');
  return out;
}

}  // namespace turnout::server
