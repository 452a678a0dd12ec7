#pragma once
// OpenAI's billing count for chat prompts (docs/REFERENCE.md §4.5 Prompt token count), on
// a neutral view of a chat request: the request parser fills these views (string_views
// into its own buffer), so counting needs no copies and this module needs no JSON library.
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
// o1/o3: 75/150); they are data, looked up by model name. Some newer small models
// (gpt-4.1-mini/nano, gpt-5-mini/nano, o4-mini) bill 32-px patches times a multiplier
// instead of 512-px tiles; for them patch_multiplier_milli is non-zero.
struct ImageTokenRates {
  std::uint32_t base = 85;
  std::uint32_t per_tile = 170;
  std::uint32_t patch_multiplier_milli = 0;  // 1620 = 1.62 tokens per patch; 0 = tiles
};
ImageTokenRates image_token_rates_for_model(std::string_view model);

// Constants of the tool-definition formula of OpenAI's token-counting guide
// (openai-cookbook, How_to_count_tokens_with_tiktoken.ipynb, num_tokens_for_tools).
// Only func_init differs between model families (10 for gpt-3.5-turbo/gpt-4, 7 for
// gpt-4o and later).
struct ToolTokenRates {
  std::int32_t func_init = 7;   // per function
  std::int32_t prop_init = 3;   // once per function that has properties
  std::int32_t prop_key = 3;    // per property
  std::int32_t enum_init = -3;  // per property that has an enum
  std::int32_t enum_item = 3;   // per enum value (plus the value's tokens)
  std::int32_t func_end = 12;   // once when any tool is defined
};
ToolTokenRates tool_token_rates_for_model(std::string_view model);

struct ChatCountOptions {
  ImageTokenRates image_rates;
  ToolTokenRates tool_rates;
  std::uint32_t default_image_tokens = 765;  // image whose size is unknown (base when detail=low)
};

// Image and tool rates for `model` (fine-tune "ft:" and provider "openai/" prefixes are
// ignored); default_image_tokens keeps its default, callers override it from config.
ChatCountOptions chat_count_options_for_model(std::string_view model);

// Tokens OpenAI bills for the prompt: per message 3 + role + content (+ name + 1), plus
// tool definitions and assistant tool calls, plus 3 for the reply priming.
std::uint64_t count_chat_prompt(const Encoding& enc, const ChatPromptView& prompt,
                                const ChatCountOptions& options);

// An upper bound on count_chat_prompt(enc, prompt, options) for every encoding, without
// tokenizing: every token covers at least one byte of its text, so a text counts at most
// its length in bytes (three times that if it holds invalid UTF-8, each invalid byte
// becoming U+FFFD); framing, image and tool-formula constants are added as the count adds
// them (the negative enum constant is left out). Linear in the prompt's size, and cheap:
// a context window that this bound fits needs no count to prove the fit.
std::uint64_t chat_prompt_token_bound(const ChatPromptView& prompt, const ChatCountOptions& options);

// Tokens for one image part by OpenAI's tile formula (or patch formula, see
// ImageTokenRates); dimensions are read from a data: URL (PNG, JPEG, GIF, WebP) when
// possible, else options.default_image_tokens.
std::uint32_t count_image_tokens(std::string_view url, ImageDetail detail,
                                 const ChatCountOptions& options);

// Width and height of an image in a base64 data: URL, if its header can be read. Only the
// few bytes the header needs are decoded; truncated or malformed input gives nullopt.
struct ImageSize {
  std::uint32_t width = 0;
  std::uint32_t height = 0;
};
std::optional<ImageSize> image_size_from_data_url(std::string_view url);

}  // namespace turnout::tokenizer
