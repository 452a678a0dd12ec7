#include "server/embeddings_request.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace turnout::server {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;

RequestError invalid_input(std::string message) {
  return RequestError{std::move(message), "input", "invalid_value"};
}

// A token array: every element a non-negative integer (a token id); the count is its length.
std::optional<RequestError> read_token_array(array tokens, std::string_view where,
                                             tokenizer::EmbeddingInputView& out) {
  std::uint64_t length = 0;
  for (element token : tokens) {
    if (!token.is_uint64())
      return invalid_input(fmt::format("Invalid '{}': token ids must be non-negative integers.", where));
    ++length;
  }
  if (length == 0) return invalid_input(fmt::format("Invalid '{}': an input must not be empty.", where));
  out.is_tokens = true;
  out.token_count = length;
  return std::nullopt;
}

std::optional<RequestError> read_text(element text, std::string_view where, tokenizer::EmbeddingInputView& out) {
  out.text = text.get_string().value_unsafe();
  if (out.text.empty()) return invalid_input(fmt::format("Invalid '{}': an input must not be empty.", where));
  return std::nullopt;
}

// `input`: a string, an array of strings, an array of token ids, or an array of arrays of
// token ids (OpenAI accepts exactly these four shapes; a mixed array is rejected).
std::optional<RequestError> read_inputs(element input, std::vector<tokenizer::EmbeddingInputView>& inputs) {
  if (input.is_string()) {
    tokenizer::EmbeddingInputView view;
    if (auto error = read_text(input, "input", view)) return error;
    inputs.push_back(view);
    return std::nullopt;
  }
  if (!input.is_array()) return type_error("input", "a string or an array", input);
  const array items = input.get_array().value_unsafe();
  const std::size_t size = items.size();
  if (size == 0) return invalid_input("Invalid 'input': the array must not be empty.");
  element first = items.at(0).value_unsafe();
  if (first.is_uint64() || first.is_int64()) {
    tokenizer::EmbeddingInputView view;
    if (auto error = read_token_array(items, "input", view)) return error;
    inputs.push_back(view);
    return std::nullopt;
  }
  if (size > kMaxEmbeddingInputs)
    return invalid_input(fmt::format("Invalid 'input': at most {} inputs per request, got {}.", kMaxEmbeddingInputs,
                                     size));
  const bool texts = first.is_string();
  std::size_t index = 0;
  for (element item : items) {
    const std::string where = fmt::format("input[{}]", index++);
    tokenizer::EmbeddingInputView view;
    if (texts && item.is_string()) {
      if (auto error = read_text(item, where, view)) return error;
    } else if (!texts && item.is_array()) {
      if (auto error = read_token_array(item.get_array().value_unsafe(), where, view)) return error;
    } else {
      return invalid_input(fmt::format(
          "Invalid '{}': every input must be {} like the first one.", where, texts ? "a string" : "a token array"));
    }
    inputs.push_back(view);
  }
  return std::nullopt;
}

}  // namespace

std::variant<const EmbeddingsRequest*, RequestError> EmbeddingsRequestParser::parse(std::string_view body) {
  request_ = EmbeddingsRequest{};
  auto parsed_body = body_reader_.parse(body);
  if (auto* error = std::get_if<RequestError>(&parsed_body)) return std::move(*error);
  const element root = std::get<element>(parsed_body);

  std::optional<std::string_view> model;
  if (auto bad = read_model_name(root, model)) return std::move(*bad);
  if (!model) return missing_parameter("model");
  // No tier routing here: an empty name cannot name a model.
  if (model->empty()) return RequestError{"Invalid 'model': expected a model name.", "model", "invalid_value"};
  request_.model = *model;

  auto input = root["input"];
  if (input.error() || input.value_unsafe().is_null())
    return missing_parameter("input");
  if (auto error = read_inputs(input.value_unsafe(), request_.inputs)) return std::move(*error);

  if (auto dimensions = root["dimensions"]; !dimensions.error() && !dimensions.value_unsafe().is_null()) {
    const element d = dimensions.value_unsafe();
    if (!d.is_int64() && !d.is_uint64()) return type_error("dimensions", "an integer", d);
    if (!d.is_uint64() || d.get_uint64().value_unsafe() == 0)
      return RequestError{"Invalid 'dimensions': integer below minimum value 1.", "dimensions",
                          "integer_below_min_value"};
    request_.dimensions = d.get_uint64().value_unsafe();
  }
  if (auto format = root["encoding_format"]; !format.error() && !format.value_unsafe().is_null()) {
    const element f = format.value_unsafe();
    if (!f.is_string()) return type_error("encoding_format", "a string", f);
    const std::string_view name = f.get_string().value_unsafe();
    if (name == "base64") {
      request_.encoding_format = EmbeddingEncodingFormat::base64;
    } else if (name != "float") {
      return RequestError{"Invalid 'encoding_format': expected one of 'float' or 'base64'.", "encoding_format",
                          "invalid_value"};
    }
  }
  if (auto user = root["user"]; !user.error() && !user.value_unsafe().is_null() && !user.value_unsafe().is_string())
    return type_error("user", "a string", user.value_unsafe());
  return &request_;
}

}  // namespace turnout::server
