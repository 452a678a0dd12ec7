// Fuzz target for the parse stage: RequestParser::parse on arbitrary bytes (no crash, no
// sanitizer report), and for every body it accepts, rewrite_top_level's output must be
// JSON with no top-level key twice and without the dropped key.
#include "server/chat_request.hpp"

#include <simdjson.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "chat_request_fuzz: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static turnout::server::RequestParser parser;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto result = parser.parse(body);
  if (!std::holds_alternative<const turnout::server::ChatRequest*>(result)) return 0;

  // Accepted bodies are valid JSON objects (lone surrogate escapes repaired first).
  std::string json(body);
  turnout::server::replace_lone_surrogate_escapes(json);
  const std::string rewritten = turnout::server::rewrite_top_level(json, {"model", "stream_options"}, R"("model":"m")");
  simdjson::dom::parser check_parser;
  auto doc = check_parser.parse(rewritten);
  check(!doc.error(), "rewrite_top_level produced invalid JSON");
  auto object = doc.value_unsafe().get_object();
  check(!object.error(), "rewrite_top_level did not produce an object");
  std::set<std::string_view> keys;
  for (auto [key, value] : object.value_unsafe()) check(keys.insert(key).second, "a top-level key was forwarded twice");
  check(keys.count("stream_options") == 0, "a dropped key was forwarded");
  check(keys.count("model") == 1, "the model was not set");
  return 0;
}
