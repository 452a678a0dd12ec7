#pragma once
// OpenAI's billing count for chat prompts (SPEC section 4), on a neutral view of a chat
// request: the request parser fills these views (string_views into its own buffer), so
// counting needs no copies and this module needs no JSON library.
#include "tokenizer/tokenizer.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace turnout::tokenizer {

enum class ImageDetail { automatic, low, high };

struct ContentPartView {
  enum class Kind { text, image, other } kind = Kind::text;
  std::string_view text;       // kind == text
  std::string_view image_url;  // kind == image: the url (may be a data: URL)
  ImageDetail detail = ImageDetail::automatic;
};

struct ToolCallView {
  std::string_view id;
  std::string_view type;       // "function"
  std::string_view function_name;
  std::string_view arguments;  // JSON text as sent
};

struct MessageView {
  std::string_view role;
  // Either plain string content, or an array of parts (or neither: null content).
  std::optional<std::string_view> content;
  std::span<const ContentPartView> parts;
  std::optional<std::string_view> name;
  std::span<const ToolCallView> tool_calls;
  std::optional<std::string_view> tool_call_id;
};

// One JSON-schema property of a function tool, flattened for the count formula.
struct ToolPropertyView {
  std::string_view name;
  std::string_view type;
  std::string_view description;
  std::span<const std::string_view> enum_values;
};

struct ToolView {
  std::string_view name;
  std::string_view description;
  std::span<const ToolPropertyView> properties;
};

struct ChatPromptView {
  std::span<const MessageView> messages;
  std::span<const ToolView> tools;
};

// Image token constants differ by model family (gpt-4o: 85/170, gpt-4o-mini: 2833/5667,
// o1/o3: 75/150); they are data, looked up by model name.
struct ImageTokenRates {
  std::uint32_t base = 85;
  std::uint32_t per_tile = 170;
};
ImageTokenRates image_token_rates_for_model(std::string_view model);

struct ChatCountOptions {
  ImageTokenRates image_rates;
  std::uint32_t default_image_tokens = 765;  // image whose size is unknown (85 when detail=low)
};

// Tokens OpenAI bills for the prompt: per message 3 + role + content (+ name + 1), plus
// tool definitions and assistant tool calls, plus 3 for the reply priming.
std::uint64_t count_chat_prompt(const Encoding& enc, const ChatPromptView& prompt,
                                const ChatCountOptions& options);

// Tokens for one image part by OpenAI's tile formula; dimensions are read from a data:
// URL (PNG, JPEG, GIF, WebP) when possible.
std::uint32_t count_image_tokens(std::string_view url, ImageDetail detail,
                                 const ChatCountOptions& options);

// Width and height of an image in a data: URL, if the header can be read.
struct ImageSize {
  std::uint32_t width = 0;
  std::uint32_t height = 0;
};
std::optional<ImageSize> image_size_from_data_url(std::string_view url);

}  // namespace turnout::tokenizer
