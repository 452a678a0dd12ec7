#pragma once
// Parse stage, shared by every endpoint's parser (chat, embeddings, Responses): the body
// as a JSON object, and the error a client gets for a bad one.
#include <simdjson.h>

#include <cstdint>
#include <optional>
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

// The simdjson parser and the scratch behind one parsed body. Each endpoint's parser owns
// one, reused for every request on its event-loop thread (no allocation once warm); the
// element returned stays valid until the next parse.
class JsonBodyReader {
 public:
  std::variant<simdjson::dom::element, RequestError> parse(std::string_view body) {
    return parse_json_body(parser_, repaired_, top_level_keys_, body);
  }

 private:
  simdjson::dom::parser parser_;
  std::string repaired_;  // body copy with lone surrogate escapes replaced, when needed
  std::vector<std::string_view> top_level_keys_;  // scratch for the duplicate-key check
};

// "Missing required parameter: '<param>'." (code missing_required_parameter).
RequestError missing_parameter(std::string param);

// The optional members every endpoint reads alike. Absent or null leaves `out` unchanged
// and is not an error; a value of the wrong type is a 400 naming the member.
//
// `model`: a string without control characters (it reaches response headers, log lines
// and metric labels, where one could split a header or a line).
std::optional<RequestError> read_model_name(simdjson::dom::element root, std::optional<std::string_view>& out);
std::optional<RequestError> read_bool(simdjson::dom::element root, std::string_view key, bool& out);
// A non-negative integer (max_tokens and friends).
std::optional<RequestError> read_non_negative_integer(simdjson::dom::element root, std::string_view key,
                                                      std::optional<std::uint64_t>& out);

}  // namespace turnout::server
