#include "server/json_rewrite.hpp"

#include <cstdint>
#include <cstring>
#include <unordered_set>

namespace turnout::server {
namespace {

// Minimal scanner over JSON that simdjson has already validated: it only needs to find
// where values end, never to report errors.
std::size_t skip_ws(std::string_view s, std::size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i;
}

std::size_t skip_string(std::string_view s, std::size_t i) {  // i at the opening quote
  // memchr finds the next quote many bytes at a time (a long prompt is one string, and
  // this runs on every forwarded body); that quote ends the string unless an odd run of
  // backslashes right before it escapes it.
  for (++i; i < s.size();) {
    const void* found = std::memchr(s.data() + i, '"', s.size() - i);
    if (found == nullptr) return s.size();
    const auto quote = static_cast<std::size_t>(static_cast<const char*>(found) - s.data());
    std::size_t backslashes = 0;
    while (quote - backslashes > i && s[quote - backslashes - 1] == '\\') ++backslashes;
    if (backslashes % 2 == 0) return quote + 1;
    i = quote + 1;
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
