#pragma once
// Small helpers for JSON text that the parsers do not cover.
#include <string>
#include <string_view>

namespace turnout {

// Replaces \uD800-\uDFFF escapes that are not part of a valid surrogate pair with
// \uFFFD, in place (same length). simdjson rejects such escapes; OpenAI and tiktoken read
// them as U+FFFD. Returns true if anything changed.
bool replace_lone_surrogate_escapes(std::string& json);

// Appends `s` as a JSON string literal (quoted, escaped): the one JSON string writer.
// Bytes that are not UTF-8 (a client can put any bytes in a request id or model name)
// become U+FFFD, so the output is always valid JSON.
void append_json_string(std::string& out, std::string_view s);

}  // namespace turnout
