#pragma once
// Parse stage, shared by every endpoint's parser (chat, embeddings, Responses): the body
// as a JSON object, and the error a client gets for a bad one.
#include <simdjson.h>

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace turnout::server {

// A client error in OpenAI's terms: message, and the offending parameter ("" when none).
struct RequestError {
  std::string message;
  std::string param;
  std::string code;  // optional OpenAI code, e.g. "invalid_utf8"
};

// "Invalid type for '<param>': expected <expected>, but got <e's type>." (code invalid_type).
RequestError type_error(std::string param, const char* expected, simdjson::dom::element e);

// Parses a request body that must be a JSON object. Lone UTF-16 surrogate escapes are read
// as U+FFFD (as tiktoken does; the body is then repaired into `repaired`, which must
// outlive the element); invalid UTF-8 and invalid JSON are errors naming the problem. A
// top-level key that occurs twice is a 400 `duplicate_key` naming it: simdjson (and so the
// gateway) reads the first copy while an upstream acts on its last, so the call counted,
// routed and billed would not be the one that ran. `key_scratch` is reused across calls.
std::variant<simdjson::dom::element, RequestError> parse_json_body(simdjson::dom::parser& parser,
                                                                   std::string& repaired,
                                                                   std::vector<std::string_view>& key_scratch,
                                                                   std::string_view body);

}  // namespace turnout::server
