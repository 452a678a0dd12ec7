#pragma once
// POST /v1/embeddings on the mock upstream: the request read as OpenAI reads it, and an
// answer with deterministic vectors (the same input always gives the same unit vector) of
// the model's dimension (3072 for text-embedding-3-large, 1536 otherwise; `dimensions`
// shortens it for the -3 models, as OpenAI does), as floats or base64 float32, and usage
// counted by the real tokenizer.
#include "common/result.hpp"
#include "mock/chat_call.hpp"

#include <boost/json/fwd.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::mock {

struct EmbeddingInput {
  std::string text;                  // a text input
  std::vector<std::uint64_t> tokens;  // or a token array
};

struct EmbeddingsCall {
  std::string_view model;
  std::vector<EmbeddingInput> inputs;
  std::uint32_t dimensions = 0;  // of each vector
  bool base64 = false;
};

// Validates `root` (model, input, dimensions, encoding_format) with OpenAI's rules.
Result<EmbeddingsCall, InvalidRequest> read_embeddings_call(const boost::json::value& root);

// The billed input tokens: each text counted with the model's encoding, token arrays by length.
std::uint64_t count_embedding_tokens(const EmbeddingsCall& call);

// {"object":"list","data":[{"object":"embedding","index":i,"embedding":...}],"model",
//  "usage":{"prompt_tokens","total_tokens"}}
std::string embeddings_json(const EmbeddingsCall& call, std::uint64_t prompt_tokens);

}  // namespace turnout::mock
