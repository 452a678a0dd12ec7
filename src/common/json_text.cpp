#include "common/json_text.hpp"

#include "common/utf8.hpp"

namespace turnout {
namespace {

unsigned hex_value(char c) {
  if (c >= '0' && c <= '9') return static_cast<unsigned>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<unsigned>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<unsigned>(c - 'A' + 10);
  return 16;
}

}  // namespace

bool replace_lone_surrogate_escapes(std::string& json) {
  bool changed = false;
  auto code_at = [&](std::size_t i) -> int {  // value of \uXXXX starting at i, or -1
    if (i + 6 > json.size() || json[i] != '\\' || json[i + 1] != 'u') return -1;
    unsigned v = 0;
    for (std::size_t k = 2; k < 6; ++k) {
      const unsigned h = hex_value(json[i + k]);
      if (h > 15) return -1;
      v = v * 16 + h;
    }
    return static_cast<int>(v);
  };
  bool in_string = false;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (!in_string) {
      in_string = c == '"';
      continue;
    }
    if (c == '"') {
      in_string = false;
    } else if (c == '\\') {
      const int v = code_at(i);
      if (v >= 0xD800 && v <= 0xDBFF) {
        const int next = code_at(i + 6);
        if (next >= 0xDC00 && next <= 0xDFFF) {
          i += 11;  // a valid pair
          continue;
        }
      }
      if (v >= 0xD800 && v <= 0xDFFF) {
        json.replace(i + 2, 4, "FFFD");
        changed = true;
        i += 5;
      } else {
        ++i;  // skip the escaped character
      }
    }
  }
  return changed;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const Utf8Sequence sequence = next_utf8_sequence(s, i);
      if (sequence.valid) {
        out.append(s.substr(i, sequence.length));
      } else {
        out.append(kReplacementCharacter);
      }
      i += sequence.length;
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 15]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
}

}  // namespace turnout
