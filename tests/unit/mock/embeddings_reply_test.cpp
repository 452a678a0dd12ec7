// The mock's embeddings: OpenAI's validation rules, deterministic unit vectors of the
// model's dimension (or `dimensions`), base64 float32 of the same vector, and usage from
// the real tokenizer.
#include "mock/embeddings_reply.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace turnout::mock {
namespace {
namespace json = boost::json;

EmbeddingsCall read_ok(const json::value& root) {
  auto call = read_embeddings_call(root);
  if (!call) ADD_FAILURE() << call.error().message;
  return call ? *call : EmbeddingsCall{};
}

std::string read_error_param(const json::value& root) {
  auto call = read_embeddings_call(root);
  EXPECT_FALSE(call) << json::serialize(root);
  return call ? "" : call.error().param;
}

std::vector<float> decode_base64_floats(std::string_view text) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    buffer = buffer << 6 | static_cast<std::uint32_t>(alphabet.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<char>(buffer >> bits & 0xff));
    }
  }
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

}  // namespace

TEST(MockEmbeddings, DimensionsFollowTheModelAndTheRequest) {
  const json::value small = json::parse(R"({"model":"text-embedding-3-small","input":"hi"})");
  const json::value large = json::parse(R"({"model":"text-embedding-3-large","input":["a","b"]})");
  const json::value ada = json::parse(R"({"model":"text-embedding-ada-002","input":"hi"})");
  const json::value shortened = json::parse(R"({"model":"text-embedding-3-large","input":"hi","dimensions":256})");
  EXPECT_EQ(read_ok(small).dimensions, 1536u);
  EXPECT_EQ(read_ok(large).dimensions, 3072u);
  EXPECT_EQ(read_ok(ada).dimensions, 1536u);
  EXPECT_EQ(read_ok(shortened).dimensions, 256u);

  const json::value answer = json::parse(embeddings_json(read_ok(large), 2));
  const auto& data = answer.at("data").as_array();
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data[1].at("index").as_int64(), 1);
  const auto& vector = data[0].at("embedding").as_array();
  ASSERT_EQ(vector.size(), 3072u);
  double norm = 0;
  for (const auto& v : vector) norm += v.as_double() * v.as_double();
  EXPECT_NEAR(norm, 1.0, 1e-4);
  EXPECT_EQ(answer.at("usage").at("prompt_tokens").as_int64(), 2);
  EXPECT_EQ(answer.at("usage").at("total_tokens").as_int64(), 2);
}

TEST(MockEmbeddings, EqualInputsGiveEqualVectorsAndBase64CarriesTheSameFloats) {
  const auto floats = json::parse(embeddings_json(
      read_ok(json::parse(R"({"model":"text-embedding-3-small","input":["same","same","other"]})")), 3));
  const auto& data = floats.at("data").as_array();
  EXPECT_EQ(data[0].at("embedding"), data[1].at("embedding"));
  EXPECT_NE(data[0].at("embedding"), data[2].at("embedding"));

  const auto encoded = json::parse(embeddings_json(
      read_ok(json::parse(R"({"model":"text-embedding-3-small","input":"same","encoding_format":"base64"})")), 1));
  const auto values = decode_base64_floats(encoded.at("data").as_array()[0].at("embedding").as_string());
  const auto& expected = data[0].at("embedding").as_array();
  ASSERT_EQ(values.size(), expected.size());
  for (std::size_t i = 0; i < values.size(); ++i) EXPECT_EQ(values[i], static_cast<float>(expected[i].as_double()));
}

TEST(MockEmbeddings, UsageIsTheRealTokenizerCount) {
  // cl100k_base: "hello world" 2 tokens, "The quick brown fox" 4; a token array its length.
  // The call's views point into the parsed body, which must outlive it.
  const json::value body =
      json::parse(R"({"model":"text-embedding-3-small","input":["hello world","The quick brown fox"]})");
  const auto call = read_ok(body);
  EXPECT_EQ(count_embedding_tokens(call), 6u);
  EXPECT_EQ(count_embedding_tokens(read_ok(json::parse(R"({"model":"text-embedding-ada-002","input":[[5,6,7]]})"))),
            3u);
}

TEST(MockEmbeddings, RejectsWhatOpenAIRejects) {
  EXPECT_EQ(read_error_param(json::parse(R"({"input":"x"})")), "model");
  EXPECT_EQ(read_error_param(json::parse(R"({"model":"text-embedding-3-small"})")), "input");
  EXPECT_EQ(read_error_param(json::parse(R"({"model":"text-embedding-3-small","input":""})")), "input");
  EXPECT_EQ(read_error_param(json::parse(R"({"model":"text-embedding-3-small","input":["a",5]})")), "input[1]");
  EXPECT_EQ(read_error_param(json::parse(R"({"model":"text-embedding-ada-002","input":"x","dimensions":8})")),
            "dimensions");
  EXPECT_EQ(read_error_param(json::parse(R"({"model":"text-embedding-3-small","input":"x","dimensions":4096})")),
            "dimensions");
  EXPECT_EQ(read_error_param(json::parse(R"({"model":"text-embedding-3-small","input":"x","encoding_format":"hex"})")),
            "encoding_format");
}

}  // namespace turnout::mock
