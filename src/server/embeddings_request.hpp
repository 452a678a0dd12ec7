#pragma once
// Parse stage of POST /v1/embeddings: the request body validated once into a view the
// count and route stages read. Strings are views into the parser's buffers, so an
// EmbeddingsRequest lives no longer than the EmbeddingsRequestParser that produced it.
#include "server/chat_request.hpp"
#include "tokenizer/embeddings_count.hpp"

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace turnout::server {

// OpenAI's own limits: at most 2,048 inputs per request, each non-empty.
inline constexpr std::size_t kMaxEmbeddingInputs = 2048;

enum class EmbeddingEncodingFormat { float_array, base64 };

struct EmbeddingsRequest {
  std::string_view model;  // required
  std::vector<tokenizer::EmbeddingInputView> inputs;  // one per element of `input` (one for a string)
  std::optional<std::uint64_t> dimensions;
  EmbeddingEncodingFormat encoding_format = EmbeddingEncodingFormat::float_array;
};

// One per event-loop thread, reused for every request on it.
class EmbeddingsRequestParser {
 public:
  // Parses and validates `body`: `model` (a string), `input` (a string, an array of
  // strings, an array of token ids, or an array of such arrays; nothing empty),
  // `dimensions` (a positive integer), `encoding_format` ("float" or "base64"), `user`
  // (a string). Unknown members are passed through untouched, as OpenAI may add some.
  std::variant<const EmbeddingsRequest*, RequestError> parse(std::string_view body);

 private:
  JsonBodyReader body_reader_;
  EmbeddingsRequest request_;
};

}  // namespace turnout::server
