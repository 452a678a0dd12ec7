#include "mock/embeddings_reply.hpp"

#include "common/base64.hpp"
#include "tokenizer/tokenizer.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <bit>
#include <cmath>
#include <cstring>

namespace turnout::mock {
namespace json = boost::json;

namespace {

constexpr std::size_t kMaxInputs = 2048;

std::uint32_t native_dimensions(std::string_view model) {
  return model.starts_with("text-embedding-3-large") ? 3072 : 1536;
}

bool accepts_dimensions(std::string_view model) { return model.starts_with("text-embedding-3"); }

Result<std::vector<std::uint64_t>, InvalidRequest> read_tokens(const json::array& items, const std::string& param) {
  std::vector<std::uint64_t> tokens;
  tokens.reserve(items.size());
  for (const auto& item : items) {
    if (item.is_uint64()) {
      tokens.push_back(item.get_uint64());
    } else if (item.is_int64() && item.get_int64() >= 0) {
      tokens.push_back(static_cast<std::uint64_t>(item.get_int64()));
    } else {
      return InvalidRequest{"'" + param + "' must hold token ids (non-negative integers).", param};
    }
  }
  if (tokens.empty()) return InvalidRequest{"'" + param + "' must not be empty.", param};
  return tokens;
}

Result<std::vector<EmbeddingInput>, InvalidRequest> read_inputs(const json::value& input) {
  std::vector<EmbeddingInput> inputs;
  if (const auto* text = input.if_string()) {
    if (text->empty()) return InvalidRequest{"'input' must not be empty.", "input"};
    inputs.push_back(EmbeddingInput{std::string(text->data(), text->size()), {}});
    return inputs;
  }
  const auto* items = input.if_array();
  if (!items || items->empty()) return InvalidRequest{"'input' must be a non-empty string or array.", "input"};
  if ((*items)[0].is_number()) {
    auto tokens = read_tokens(*items, "input");
    if (!tokens) return tokens.error();
    inputs.push_back(EmbeddingInput{{}, std::move(*tokens)});
    return inputs;
  }
  if (items->size() > kMaxInputs) return InvalidRequest{"'input' holds more than 2048 inputs.", "input"};
  for (std::size_t i = 0; i < items->size(); ++i) {
    const std::string param = fmt::format("input[{}]", i);
    const json::value& item = (*items)[i];
    if (const auto* text = item.if_string(); text && !text->empty()) {
      inputs.push_back(EmbeddingInput{std::string(text->data(), text->size()), {}});
    } else if (const auto* tokens = item.if_array()) {
      auto read = read_tokens(*tokens, param);
      if (!read) return read.error();
      inputs.push_back(EmbeddingInput{{}, std::move(*read)});
    } else {
      return InvalidRequest{"'" + param + "' must be a non-empty string or a token array.", param};
    }
  }
  return inputs;
}

// SplitMix64: a fixed, well-mixed sequence from one seed.
std::uint64_t next_random(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// FNV-1a of the input (text bytes, or token ids), so equal inputs get equal vectors.
std::uint64_t seed_of(const EmbeddingInput& input) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  auto mix = [&](unsigned char byte) {
    hash ^= byte;
    hash *= 0x100000001b3ull;
  };
  for (char c : input.text) mix(static_cast<unsigned char>(c));
  for (std::uint64_t token : input.tokens)
    for (int shift = 0; shift < 64; shift += 8) mix(static_cast<unsigned char>(token >> shift));
  return hash;
}

// A unit vector (OpenAI's embeddings are normalised to length 1).
std::vector<float> vector_for(const EmbeddingInput& input, std::uint32_t dimensions) {
  std::vector<float> values(dimensions);
  std::uint64_t state = seed_of(input);
  double norm = 0;
  for (float& v : values) {
    v = static_cast<float>(static_cast<double>(next_random(state) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    norm += static_cast<double>(v) * v;
  }
  const double scale = norm > 0 ? 1.0 / std::sqrt(norm) : 0.0;
  for (float& v : values) v = static_cast<float>(v * scale);
  return values;
}

// Little-endian float32 bytes, base64-encoded: what OpenAI sends for encoding_format base64.
std::string base64_floats(const std::vector<float>& values) {
  std::string bytes(values.size() * sizeof(float), '\0');
  static_assert(std::endian::native == std::endian::little, "the mock writes float32 in host order");
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return base64_encode(bytes);
}

}  // namespace

Result<EmbeddingsCall, InvalidRequest> read_embeddings_call(const json::value& root) {
  const auto* body = root.if_object();
  if (!body) return InvalidRequest{"The request body must be a JSON object.", ""};
  EmbeddingsCall call;
  const auto* model = body->if_contains("model");
  if (!model || !model->is_string()) return InvalidRequest{"Missing required parameter: 'model'.", "model"};
  call.model = std::string_view(model->get_string().data(), model->get_string().size());
  const auto* input = body->if_contains("input");
  if (!input) return InvalidRequest{"Missing required parameter: 'input'.", "input"};
  auto inputs = read_inputs(*input);
  if (!inputs) return inputs.error();
  call.inputs = std::move(*inputs);

  call.dimensions = native_dimensions(call.model);
  if (const auto* dimensions = body->if_contains("dimensions"); dimensions && !dimensions->is_null()) {
    if (!accepts_dimensions(call.model))
      return InvalidRequest{"This model does not support specifying dimensions.", "dimensions"};
    const auto* wanted = dimensions->if_int64();
    const auto* wanted_unsigned = dimensions->if_uint64();
    const std::int64_t value = wanted ? *wanted : wanted_unsigned ? static_cast<std::int64_t>(*wanted_unsigned) : 0;
    if (value < 1 || value > static_cast<std::int64_t>(call.dimensions))
      return InvalidRequest{fmt::format("'dimensions' must be between 1 and {}.", call.dimensions), "dimensions"};
    call.dimensions = static_cast<std::uint32_t>(value);
  }
  if (const auto* format = body->if_contains("encoding_format"); format && !format->is_null()) {
    const auto* name = format->if_string();
    if (!name || (*name != "float" && *name != "base64"))
      return InvalidRequest{"'encoding_format' must be 'float' or 'base64'.", "encoding_format"};
    call.base64 = *name == "base64";
  }
  return call;
}

std::uint64_t count_embedding_tokens(const EmbeddingsCall& call) {
  const auto& encoding =
      tokenizer::Encoding::get(tokenizer::encoding_for_model(call.model, tokenizer::EncodingId::cl100k_base));
  std::uint64_t total = 0;
  for (const EmbeddingInput& input : call.inputs) total += input.text.empty() ? input.tokens.size() : encoding.count(input.text);
  return total;
}

std::string embeddings_json(const EmbeddingsCall& call, std::uint64_t prompt_tokens) {
  json::array data;
  data.reserve(call.inputs.size());
  for (std::size_t i = 0; i < call.inputs.size(); ++i) {
    const std::vector<float> values = vector_for(call.inputs[i], call.dimensions);
    json::value embedding;
    if (call.base64) {
      embedding = json::string(base64_floats(values));
    } else {
      json::array numbers;
      numbers.reserve(values.size());
      for (float v : values) numbers.emplace_back(static_cast<double>(v));
      embedding = std::move(numbers);
    }
    data.emplace_back(json::object{{"object", "embedding"}, {"index", i}, {"embedding", std::move(embedding)}});
  }
  return json::serialize(json::object{
      {"object", "list"},
      {"data", std::move(data)},
      {"model", call.model},
      {"usage", json::object{{"prompt_tokens", prompt_tokens}, {"total_tokens", prompt_tokens}}}});
}

}  // namespace turnout::mock
