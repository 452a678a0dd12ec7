// OpenAI's billing count for chat prompts (docs/REFERENCE.md §4.5 Prompt token count).
//
// The reference is OpenAI's cookbook notebook "How to count tokens with tiktoken"
// (openai/openai-cookbook, examples/How_to_count_tokens_with_tiktoken.ipynb):
// num_tokens_from_messages for messages, num_tokens_for_tools for tool definitions. Its
// published example counts (which it checked against the API's usage.prompt_tokens) are
// reproduced in tests/unit/chat_count_test.cpp. Image costs follow OpenAI's vision guide
// ("Calculating costs").
#include "tokenizer/chat_count.hpp"

#include "tokenizer/utf8.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace turnout::tokenizer {
namespace {

// Every message is framed as <|start|>{role}<|message|>{content}<|end|>.
constexpr std::uint64_t kTokensPerMessage = 3;
constexpr std::uint64_t kTokensPerName = 1;
// Every reply is primed with <|start|>assistant<|message|>.
constexpr std::uint64_t kReplyPrimingTokens = 3;
// The notebook has no formula for assistant tool calls. Each call is rendered as its own
// framed block (recipient and arguments), so it is counted like a message: 3 framing
// tokens plus its function name and its arguments text. This is the rule of
// nyno-ai/openai-token-counter (used by LlamaIndex), which was fitted against API usage.
// The call id and type are not rendered into the prompt and are not counted.
constexpr std::uint64_t kTokensPerToolCall = 3;

// --- Model tables ------------------------------------------------------------------

// Rates apply to every model whose name starts with `prefix`; the longest prefix wins,
// so "gpt-4o-mini" overrides "gpt-4o" and "gpt-4.1-mini" overrides "gpt-4.1".
template <class Rates>
struct ModelRates {
  std::string_view prefix;
  Rates rates;
};

// OpenAI vision guide, "Calculating costs": base and tile tokens per model family, and
// the patch multipliers of the models billed by 32-px patches.
constexpr ModelRates<ImageTokenRates> kImageRates[] = {
    {"gpt-4o", {85, 170, 0}},
    {"chatgpt-4o", {85, 170, 0}},
    {"gpt-4.1", {85, 170, 0}},
    {"gpt-4.5", {85, 170, 0}},
    {"gpt-4o-mini", {2833, 5667, 0}},
    {"o1", {75, 150, 0}},
    {"o3", {75, 150, 0}},
    {"gpt-5", {70, 140, 0}},
    {"computer-use-preview", {65, 129, 0}},
    {"gpt-4.1-mini", {0, 0, 1620}},
    {"gpt-4.1-nano", {0, 0, 2460}},
    {"gpt-5-mini", {0, 0, 1620}},
    {"gpt-5-nano", {0, 0, 2460}},
    {"o4-mini", {0, 0, 1720}},
};

// num_tokens_for_tools: func_init is 10 for gpt-3.5-turbo and gpt-4, 7 for gpt-4o and
// gpt-4o-mini; later (o200k_base) models are taken to behave like gpt-4o.
constexpr ToolTokenRates kCl100kEraToolRates{10, 3, 3, -3, 3, 12};
constexpr ToolTokenRates kO200kEraToolRates{7, 3, 3, -3, 3, 12};
constexpr ModelRates<ToolTokenRates> kToolRates[] = {
    {"gpt-3.5", kCl100kEraToolRates},
    {"gpt-35", kCl100kEraToolRates},  // Azure deployment spelling
    {"gpt-4", kCl100kEraToolRates},
    {"gpt-4o", kO200kEraToolRates},
    {"gpt-4.1", kO200kEraToolRates},
    {"gpt-4.5", kO200kEraToolRates},
};

// "ft:gpt-4o-mini-2024-07-18:org::id" and "openai/gpt-4o" are billed as their base model.
std::string_view base_model_name(std::string_view model) {
  constexpr std::string_view kFineTunePrefix = "ft:";
  if (model.starts_with(kFineTunePrefix)) model.remove_prefix(kFineTunePrefix.size());
  const std::size_t slash = model.rfind('/');
  if (slash != std::string_view::npos) model.remove_prefix(slash + 1);
  return model;
}

template <class Rates, std::size_t N>
Rates rates_for_model(const ModelRates<Rates> (&table)[N], std::string_view model, Rates fallback) {
  const std::string_view name = base_model_name(model);
  std::size_t best_length = 0;
  for (const auto& entry : table) {
    if (name.starts_with(entry.prefix) && entry.prefix.size() > best_length) {
      best_length = entry.prefix.size();
      fallback = entry.rates;
    }
  }
  return fallback;
}

// --- Images ------------------------------------------------------------------------

constexpr std::uint64_t kMaxImageSide = 2048;
constexpr std::uint64_t kShortSideTarget = 768;
constexpr std::uint64_t kTileSide = 512;
constexpr std::uint64_t kPatchSide = 32;
constexpr std::uint64_t kMaxPatches = 1536;

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }

// Scales so that the side picked by `side_of` becomes `target`, only ever shrinking.
// Pixel sizes are rounded down: OpenAI does not document its rounding, and flooring
// reproduces every example of its vision guide.
template <class SideOf>
ImageSize shrink_to(ImageSize size, std::uint64_t target, SideOf side_of) {
  const std::uint64_t side = side_of(size.width, size.height);
  if (side <= target) return size;
  const auto scaled = [&](std::uint64_t length) {
    return static_cast<std::uint32_t>(std::max<std::uint64_t>(1, length * target / side));
  };
  return ImageSize{scaled(size.width), scaled(size.height)};
}

// "Scale to fit in a 2048px x 2048px square, maintaining original aspect ratio; scale so
// that the image's shortest side is 768px long; count the number of 512px squares."
std::uint64_t tile_count(ImageSize size) {
  const auto longest = [](std::uint64_t w, std::uint64_t h) { return std::max(w, h); };
  const auto shortest = [](std::uint64_t w, std::uint64_t h) { return std::min(w, h); };
  const ImageSize fitted = shrink_to(shrink_to(size, kMaxImageSide, longest), kShortSideTarget, shortest);
  return ceil_div(fitted.width, kTileSide) * ceil_div(fitted.height, kTileSide);
}

// Patch-billed models: 32-px patches covering the image; above 1536 the image is shrunk
// so that a whole number of patches fits each side and the total stays within 1536.
std::uint64_t patch_count(ImageSize size) {
  const std::uint64_t original = ceil_div(size.width, kPatchSide) * ceil_div(size.height, kPatchSide);
  if (original <= kMaxPatches) return original;
  const double width = size.width;
  const double height = size.height;
  const double shrink = std::sqrt(static_cast<double>(kPatchSide * kPatchSide * kMaxPatches) / (width * height));
  const double width_patches = width * shrink / kPatchSide;
  const double height_patches = height * shrink / kPatchSide;
  // At least one patch per side, or an extremely thin image would shrink to nothing.
  const double fit = std::min(std::max(1.0, std::floor(width_patches)) / width_patches,
                              std::max(1.0, std::floor(height_patches)) / height_patches);
  const auto resized_width = static_cast<std::uint64_t>(width * shrink * fit);
  const auto resized_height = static_cast<std::uint64_t>(height * shrink * fit);
  const std::uint64_t resized = ceil_div(std::max<std::uint64_t>(1, resized_width), kPatchSide) *
                                ceil_div(std::max<std::uint64_t>(1, resized_height), kPatchSide);
  return std::min(resized, kMaxPatches);
}

std::uint32_t image_tokens_for_size(ImageSize size, const ImageTokenRates& rates) {
  if (rates.patch_multiplier_milli != 0) {
    return static_cast<std::uint32_t>(patch_count(size) * rates.patch_multiplier_milli / 1000);
  }
  return static_cast<std::uint32_t>(rates.base + rates.per_tile * tile_count(size));
}

// --- Messages and tools ------------------------------------------------------------

std::uint64_t content_part_tokens(const Encoding& enc, const ContentPartView& part,
                                  const ChatCountOptions& options) {
  switch (part.kind) {
    case ContentPartView::Kind::text:
      return enc.count(part.text);
    case ContentPartView::Kind::image:
      return count_image_tokens(part.image_url, part.detail, options);
    case ContentPartView::Kind::other:
      break;  // audio, files: billed by rules we cannot know from the request alone
  }
  return 0;
}

std::uint64_t tool_call_tokens(const Encoding& enc, const ToolCallView& call) {
  return kTokensPerToolCall + enc.count(call.function_name) + enc.count(call.arguments);
}

std::uint64_t message_tokens(const Encoding& enc, const MessageView& message,
                             const ChatCountOptions& options) {
  std::uint64_t tokens = kTokensPerMessage + enc.count(message.role);
  if (message.content) tokens += enc.count(*message.content);
  for (const ContentPartView& part : message.parts) tokens += content_part_tokens(enc, part, options);
  if (message.name) tokens += enc.count(*message.name) + kTokensPerName;
  for (const ToolCallView& call : message.tool_calls) tokens += tool_call_tokens(enc, call);
  // The notebook counts every string field of a message; tool_call_id is one.
  if (message.tool_call_id) tokens += enc.count(*message.tool_call_id);
  return tokens;
}

std::string_view without_trailing_period(std::string_view text) {
  if (text.ends_with('.')) text.remove_suffix(1);
  return text;
}

// Tokens of "a:b" or "a:b:c" as one string: BPE may merge across the colons, so the
// parts cannot be counted separately. `line` is a scratch buffer reused across calls.
std::int64_t joined_line_tokens(const Encoding& enc, std::string& line,
                                std::initializer_list<std::string_view> fields) {
  line.clear();
  bool first = true;
  for (std::string_view field : fields) {
    if (!first) line += ':';
    line += field;
    first = false;
  }
  return static_cast<std::int64_t>(enc.count(line));
}

std::int64_t property_tokens(const Encoding& enc, std::string& line, const ToolPropertyView& property,
                             const ToolTokenRates& rates) {
  std::int64_t tokens = rates.prop_key;
  if (!property.enum_values.empty()) {
    tokens += rates.enum_init;
    for (std::string_view value : property.enum_values) {
      tokens += rates.enum_item + static_cast<std::int64_t>(enc.count(value));
    }
  }
  return tokens + joined_line_tokens(enc, line,
                                     {property.name, property.type, without_trailing_period(property.description)});
}

std::int64_t function_tokens(const Encoding& enc, std::string& line, const ToolView& tool,
                             const ToolTokenRates& rates) {
  std::int64_t tokens = rates.func_init + joined_line_tokens(enc, line, {tool.name, without_trailing_period(tool.description)});
  if (!tool.properties.empty()) {
    tokens += rates.prop_init;
    for (const ToolPropertyView& property : tool.properties) tokens += property_tokens(enc, line, property, rates);
  }
  return tokens;
}

std::uint64_t tool_definitions_tokens(const Encoding& enc, std::span<const ToolView> tools,
                                      const ToolTokenRates& rates) {
  if (tools.empty()) return 0;
  std::string line;
  std::int64_t tokens = rates.func_end;
  for (const ToolView& tool : tools) tokens += function_tokens(enc, line, tool, rates);
  return static_cast<std::uint64_t>(std::max<std::int64_t>(0, tokens));
}

// --- Upper bound (chat_prompt_token_bound) -----------------------------------------

// At most one token per byte of the text the tokenizer sees; invalid UTF-8 is seen as
// U+FFFD, three bytes for each invalid byte at worst.
std::uint64_t text_token_bound(std::string_view text) {
  constexpr std::uint64_t kReplacementBytes = 3;
  return is_valid_utf8(text) ? text.size() : kReplacementBytes * text.size();
}

// Tool formula constants as non-negative bounds: a negative constant only lowers the count.
std::uint64_t at_least_zero(std::int32_t constant) { return constant > 0 ? static_cast<std::uint64_t>(constant) : 0; }

std::uint64_t message_token_bound(const MessageView& message, const ChatCountOptions& options) {
  std::uint64_t tokens = kTokensPerMessage + text_token_bound(message.role);
  if (message.content) tokens += text_token_bound(*message.content);
  for (const ContentPartView& part : message.parts) {
    if (part.kind == ContentPartView::Kind::text) tokens += text_token_bound(part.text);
    if (part.kind == ContentPartView::Kind::image) tokens += count_image_tokens(part.image_url, part.detail, options);
  }
  if (message.name) tokens += text_token_bound(*message.name) + kTokensPerName;
  for (const ToolCallView& call : message.tool_calls)
    tokens += kTokensPerToolCall + text_token_bound(call.function_name) + text_token_bound(call.arguments);
  if (message.tool_call_id) tokens += text_token_bound(*message.tool_call_id);
  return tokens;
}

// The joined "a:b[:c]" line: its bytes are the fields' bytes plus one per colon.
std::uint64_t tool_definitions_token_bound(std::span<const ToolView> tools, const ToolTokenRates& rates) {
  if (tools.empty()) return 0;
  std::uint64_t tokens = at_least_zero(rates.func_end);
  for (const ToolView& tool : tools) {
    tokens += at_least_zero(rates.func_init) + text_token_bound(tool.name) + 1 + text_token_bound(tool.description);
    if (tool.properties.empty()) continue;
    tokens += at_least_zero(rates.prop_init);
    for (const ToolPropertyView& property : tool.properties) {
      tokens += at_least_zero(rates.prop_key) + text_token_bound(property.name) + 1 + text_token_bound(property.type) +
                1 + text_token_bound(property.description);
      if (property.enum_values.empty()) continue;
      tokens += at_least_zero(rates.enum_init);
      for (std::string_view value : property.enum_values) tokens += at_least_zero(rates.enum_item) + text_token_bound(value);
    }
  }
  return tokens;
}

}  // namespace

ImageTokenRates image_token_rates_for_model(std::string_view model) {
  return rates_for_model(kImageRates, model, ImageTokenRates{});
}

ToolTokenRates tool_token_rates_for_model(std::string_view model) {
  return rates_for_model(kToolRates, model, kO200kEraToolRates);
}

ChatCountOptions chat_count_options_for_model(std::string_view model) {
  ChatCountOptions options;
  options.image_rates = image_token_rates_for_model(model);
  options.tool_rates = tool_token_rates_for_model(model);
  return options;
}

std::uint32_t count_image_tokens(std::string_view url, ImageDetail detail, const ChatCountOptions& options) {
  const ImageTokenRates& rates = options.image_rates;
  const bool tiled = rates.patch_multiplier_milli == 0;
  // Low detail is a flat fee on tiled models: no need to look at the image at all.
  if (tiled && detail == ImageDetail::low) return rates.base;
  const auto size = image_size_from_data_url(url);
  if (!size) return options.default_image_tokens;
  return image_tokens_for_size(*size, rates);
}

std::uint64_t count_chat_prompt(const Encoding& enc, const ChatPromptView& prompt,
                                const ChatCountOptions& options) {
  std::uint64_t tokens = kReplyPrimingTokens;
  for (const MessageView& message : prompt.messages) tokens += message_tokens(enc, message, options);
  return tokens + tool_definitions_tokens(enc, prompt.tools, options.tool_rates);
}

std::uint64_t chat_prompt_token_bound(const ChatPromptView& prompt, const ChatCountOptions& options) {
  std::uint64_t tokens = kReplyPrimingTokens;
  for (const MessageView& message : prompt.messages) tokens += message_token_bound(message, options);
  return tokens + tool_definitions_token_bound(prompt.tools, options.tool_rates);
}

}  // namespace turnout::tokenizer
