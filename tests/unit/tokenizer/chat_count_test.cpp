// Chat prompt token count (docs/REFERENCE.md §4.5) and image sizes from data: URLs.
//
// Reference numbers come from OpenAI's cookbook notebook "How to count tokens with
// tiktoken" (openai/openai-cookbook, examples/How_to_count_tokens_with_tiktoken.ipynb),
// whose printed outputs show each count next to the API's usage.prompt_tokens, and from
// OpenAI's vision guide ("Calculating costs"). Formula tests use a one-token-per-byte
// encoding so that every expected number can be worked out by hand.
#include "tokenizer/chat_count.hpp"
#include "tokenizer/tokenizer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::tokenizer {
namespace {

using Bytes = std::vector<std::uint8_t>;

// --- Test doubles and image builders -------------------------------------------------

// One token per byte: makes the formula's arithmetic visible in the tests.
class OneTokenPerByte final : public Encoding {
 public:
  EncodingId id() const override { return EncodingId::cl100k_base; }
  std::size_t count(std::string_view text) const override { return text.size(); }
  void encode(std::string_view text, std::vector<TokenId>& out) const override {
    for (char c : text) out.push_back(static_cast<unsigned char>(c));
  }
  std::string decode(std::span<const TokenId> ids) const override {
    std::string text;
    for (TokenId id : ids) text += static_cast<char>(id);
    return text;
  }
};

std::string base64(const Bytes& bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t group = static_cast<std::uint32_t>(bytes[i]) << 16;
    if (n > 1) group |= static_cast<std::uint32_t>(bytes[i + 1]) << 8;
    if (n > 2) group |= bytes[i + 2];
    for (std::size_t k = 0; k < 4; ++k) {
      out += k <= n ? kAlphabet[(group >> (18 - 6 * k)) & 0x3F] : '=';
    }
  }
  return out;
}

std::string data_url(std::string_view media_type, const Bytes& bytes) {
  return "data:" + std::string(media_type) + ";base64," + base64(bytes);
}

void append(Bytes& out, std::string_view text) { out.insert(out.end(), text.begin(), text.end()); }
void append_be(Bytes& out, std::uint32_t value, int width) {
  for (int i = width - 1; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}
void append_le(Bytes& out, std::uint32_t value, int width) {
  for (int i = 0; i < width; ++i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

std::uint32_t crc32(const Bytes& bytes, std::size_t begin) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = begin; i < bytes.size(); ++i) {
    crc ^= bytes[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

// Signature and IHDR chunk (8-bit RGB), with its CRC.
Bytes png(std::uint32_t width, std::uint32_t height) {
  Bytes out{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  append_be(out, 13, 4);
  const std::size_t chunk_type = out.size();
  append(out, "IHDR");
  append_be(out, width, 4);
  append_be(out, height, 4);
  out.insert(out.end(), {8, 2, 0, 0, 0});
  append_be(out, crc32(out, chunk_type), 4);
  return out;
}

// GIF89a header and logical screen descriptor.
Bytes gif(std::uint16_t width, std::uint16_t height) {
  Bytes out;
  append(out, "GIF89a");
  append_le(out, width, 2);
  append_le(out, height, 2);
  out.insert(out.end(), {0x00, 0x00, 0x00});
  return out;
}

// SOI, a JFIF APP0, an EXIF-like APP1 of 300 bytes, a DHT (C4: in the SOF range but not
// a frame header), fill bytes, then a progressive SOF2 frame header with 3 components.
Bytes jpeg(std::uint16_t width, std::uint16_t height) {
  Bytes out{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10};
  append(out, std::string_view("JFIF\0", 5));
  out.insert(out.end(), {0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00});
  out.insert(out.end(), {0xFF, 0xE1});
  append_be(out, 2 + 298, 2);
  append(out, std::string_view("Exif\0\0", 6));
  out.insert(out.end(), 292, 0xAB);
  out.insert(out.end(), {0xFF, 0xC4, 0x00, 0x05, 0x00, 0x00, 0x00});
  out.insert(out.end(), {0xFF, 0xFF, 0xFF, 0xC2, 0x00, 0x11, 0x08});
  append_be(out, height, 2);
  append_be(out, width, 2);
  out.insert(out.end(), {0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01});
  out.insert(out.end(), {0xFF, 0xD9});
  return out;
}

// RIFF container with the image chunk first, then a small EXIF chunk, so that the image
// chunk is not the end of the file (the truncation test relies on bytes after the header).
Bytes riff_webp(std::string_view chunk, const Bytes& payload) {
  const Bytes exif_payload{'I', 'I', '*', 0};
  Bytes out;
  append(out, "RIFF");
  append_le(out, static_cast<std::uint32_t>(4 + 8 + payload.size() + 8 + exif_payload.size()), 4);
  append(out, "WEBP");
  append(out, chunk);
  append_le(out, static_cast<std::uint32_t>(payload.size()), 4);
  out.insert(out.end(), payload.begin(), payload.end());
  append(out, "EXIF");
  append_le(out, static_cast<std::uint32_t>(exif_payload.size()), 4);
  out.insert(out.end(), exif_payload.begin(), exif_payload.end());
  return out;
}

// Lossy: key-frame tag, start code, 14-bit sizes (upscale bits set, which must be ignored).
Bytes webp_lossy(std::uint16_t width, std::uint16_t height) {
  Bytes payload{0x50, 0x02, 0x00, 0x9D, 0x01, 0x2A};
  append_le(payload, width | 0xC000u, 2);
  append_le(payload, height | 0x4000u, 2);
  return riff_webp("VP8 ", payload);
}

// Lossless: signature 0x2f, then (width-1) | (height-1) << 14 | alpha << 28.
Bytes webp_lossless(std::uint32_t width, std::uint32_t height) {
  Bytes payload{0x2F};
  append_le(payload, (width - 1) | ((height - 1) << 14) | (1u << 28), 4);
  return riff_webp("VP8L", payload);
}

// Extended: flags (alpha), reserved, 24-bit width-1 and height-1.
Bytes webp_extended(std::uint32_t width, std::uint32_t height) {
  Bytes payload{0x10, 0x00, 0x00, 0x00};
  append_le(payload, width - 1, 3);
  append_le(payload, height - 1, 3);
  return riff_webp("VP8X", payload);
}

struct SampleImage {
  std::string name;
  std::string url;
  std::uint32_t width;
  std::uint32_t height;
  std::uint32_t gpt4o_tokens;  // detail high, worked out in the comment at each sample
};

std::vector<SampleImage> sample_images() {
  return {
      // 800x600: within 2048, shortest side 600 <= 768 -> 2 x 2 tiles -> 85 + 4*170.
      {"png", data_url("image/png", png(800, 600)), 800, 600, 765},
      // 300x200: one tile -> 85 + 170.
      {"gif", data_url("image/gif", gif(300, 200)), 300, 200, 255},
      // 1500x1000: shortest 1000 -> 768, width 1500*768/1000 = 1152 -> 3 x 2 tiles -> 85 + 6*170.
      {"jpeg", data_url("image/jpeg", jpeg(1500, 1000)), 1500, 1000, 1105},
      // 640x480: 2 x 1 tiles -> 85 + 2*170.
      {"webp-lossy", data_url("image/webp", webp_lossy(640, 480)), 640, 480, 425},
      // 4000x100: fit 2048 -> 2048x51, shortest 51 -> 4 x 1 tiles -> 85 + 4*170.
      {"webp-lossless", data_url("image/webp", webp_lossless(4000, 100)), 4000, 100, 765},
      // 5000x3000: fit 2048 -> 2048x1228, shortest 1228 -> 768: 2048*768/1228 = 1280 ->
      // 3 x 2 tiles -> 85 + 6*170.
      {"webp-extended", data_url("image/webp", webp_extended(5000, 3000)), 5000, 3000, 1105},
  };
}

void expect_size(std::optional<ImageSize> size, std::uint32_t width, std::uint32_t height) {
  ASSERT_TRUE(size.has_value());
  EXPECT_EQ(size->width, width);
  EXPECT_EQ(size->height, height);
}

// --- Message formula -----------------------------------------------------------------

const OneTokenPerByte kBytes;

TEST(ChatCount, EmptyPromptIsOnlyTheReplyPriming) {
  EXPECT_EQ(count_chat_prompt(kBytes, ChatPromptView{}, ChatCountOptions{}), 3u);
}

TEST(ChatCount, MessageIsThreePlusRolePlusContent) {
  const MessageView messages[] = {{.role = "user", .content = "hello"}};
  // 3 + "user" (4) + "hello" (5), + 3 priming.
  EXPECT_EQ(count_chat_prompt(kBytes, {.messages = messages}, {}), 15u);
}

TEST(ChatCount, NameCostsItsTokensPlusOne) {
  const MessageView messages[] = {{.role = "user", .content = "hello", .name = "bob"}};
  // 15 as above, + "bob" (3) + 1.
  EXPECT_EQ(count_chat_prompt(kBytes, {.messages = messages}, {}), 19u);
}

TEST(ChatCount, NullContentCountsNothing) {
  const MessageView messages[] = {{.role = "assistant"}};
  EXPECT_EQ(count_chat_prompt(kBytes, {.messages = messages}, {}), 3u + 9u + 3u);
}

TEST(ChatCount, TextPartsAreCountedSeparatelyAndSummed) {
  const ContentPartView parts[] = {{.kind = ContentPartView::Kind::text, .text = "ab"},
                                   {.kind = ContentPartView::Kind::text, .text = "cde"}};
  const MessageView messages[] = {{.role = "user", .parts = parts}};
  EXPECT_EQ(count_chat_prompt(kBytes, {.messages = messages}, {}), 3u + 4u + 2u + 3u + 3u);
}

TEST(ChatCount, ImagePartsAddTheirImageCost) {
  const ContentPartView parts[] = {
      {.kind = ContentPartView::Kind::text, .text = "ab"},
      {.kind = ContentPartView::Kind::image, .image_url = "https://example.com/a.png", .detail = ImageDetail::low},
      {.kind = ContentPartView::Kind::image, .image_url = "https://example.com/b.png"},
      {.kind = ContentPartView::Kind::other}};
  const MessageView messages[] = {{.role = "user", .parts = parts}};
  // 3 + 4 + 2, + 85 (low detail) + 765 (size unknown), + 0 for the unknown part, + 3.
  EXPECT_EQ(count_chat_prompt(kBytes, {.messages = messages}, {}), 3u + 4u + 2u + 85u + 765u + 3u);
}

TEST(ChatCount, AssistantToolCallsCountNameArgumentsAndFraming) {
  const ToolCallView calls[] = {
      {.id = "call_1", .type = "function", .function_name = "get", .arguments = "{}"},
      {.id = "call_2", .type = "function", .function_name = "put", .arguments = "{\"a\":1}"}};
  const MessageView messages[] = {{.role = "assistant", .tool_calls = calls}};
  // 3 + "assistant" (9), + (3 + 3 + 2) + (3 + 3 + 7), + 3; ids and types are not counted.
  EXPECT_EQ(count_chat_prompt(kBytes, {.messages = messages}, {}), 12u + 8u + 13u + 3u);
}

TEST(ChatCount, ToolCallIdIsAStringFieldOfTheMessage) {
  const MessageView messages[] = {{.role = "tool", .content = "42", .tool_call_id = "call_1"}};
  // 3 + "tool" (4) + "42" (2) + "call_1" (6), + 3.
  EXPECT_EQ(count_chat_prompt(kBytes, {.messages = messages}, {}), 18u);
}

// --- Tool definition formula ---------------------------------------------------------

TEST(ChatCount, ToolDefinitionFollowsTheNotebookFormula) {
  const std::string_view units[] = {"x", "yz"};
  const ToolPropertyView properties[] = {
      {.name = "a", .type = "string", .description = "The a.", .enum_values = units}};
  const ToolView tools[] = {{.name = "f", .description = "Does x.", .properties = properties}};
  // func_init 7 + "f:Does x" (8, trailing '.' dropped) + prop_init 3 + prop_key 3
  // + "a:string:The a" (14) + enum_init -3 + (3 + "x") + (3 + "yz") + func_end 12, + 3.
  const std::uint64_t expected = 7 + 8 + 3 + 3 + 14 - 3 + 4 + 5 + 12 + 3;
  EXPECT_EQ(count_chat_prompt(kBytes, {.tools = tools}, {}), expected);
}

TEST(ChatCount, FunctionEndIsCountedOnceAndPropInitOnlyWithProperties) {
  const ToolView tools[] = {{.name = "f", .description = "d"}, {.name = "g", .description = ""}};
  // (7 + "f:d") + (7 + "g:") + func_end 12 once, + 3 priming.
  EXPECT_EQ(count_chat_prompt(kBytes, {.tools = tools}, {}), 7u + 3u + 7u + 2u + 12u + 3u);
}

TEST(ChatCount, OlderModelsUseALargerFunctionOverhead) {
  const ToolView tools[] = {{.name = "f", .description = "d"}};
  const auto gpt4 = chat_count_options_for_model("gpt-4");
  const auto gpt4o = chat_count_options_for_model("gpt-4o");
  EXPECT_EQ(count_chat_prompt(kBytes, {.tools = tools}, gpt4) - count_chat_prompt(kBytes, {.tools = tools}, gpt4o),
            3u);
}

// --- Upper bound without tokenizing (chat_prompt_token_bound) ------------------------

// With one token per byte the bound is reached exactly: it adds what the count adds, with
// each text's bytes in place of its tokens (the enum constant, negative, left out).
TEST(ChatPromptTokenBound, EqualsTheCountWhenEveryByteIsAToken) {
  const ContentPartView parts[] = {
      {.kind = ContentPartView::Kind::text, .text = "ab"},
      {.kind = ContentPartView::Kind::image, .image_url = "https://example.com/a.png", .detail = ImageDetail::low},
      {.kind = ContentPartView::Kind::image, .image_url = "https://example.com/b.png"}};
  const ToolCallView calls[] = {{.id = "call_1", .type = "function", .function_name = "get", .arguments = "{}"}};
  const MessageView messages[] = {{.role = "user", .parts = parts, .name = "bob"},
                                  {.role = "assistant", .tool_calls = calls},
                                  {.role = "tool", .content = "42", .tool_call_id = "call_1"}};
  const ToolPropertyView properties[] = {{.name = "a", .type = "string", .description = "The a"}};
  const ToolView tools[] = {{.name = "f", .description = "Does x", .properties = properties}};
  const ChatPromptView prompt{.messages = messages, .tools = tools};
  EXPECT_EQ(chat_prompt_token_bound(prompt, {}), count_chat_prompt(kBytes, prompt, {}));
}

TEST(ChatPromptTokenBound, LeavesOutTheNegativeEnumConstant) {
  const std::string_view units[] = {"x"};
  const ToolPropertyView properties[] = {{.name = "a", .type = "t", .description = "d", .enum_values = units}};
  const ToolView tools[] = {{.name = "f", .description = "g", .properties = properties}};
  const ChatPromptView prompt{.tools = tools};
  EXPECT_EQ(chat_prompt_token_bound(prompt, {}), count_chat_prompt(kBytes, prompt, {}) + 3u);
}

// The real encodings never count more than the bound, whatever the script, and invalid
// UTF-8 (each invalid byte read as the three bytes of U+FFFD) is bounded too.
TEST(ChatPromptTokenBound, BoundsTheRealCountsOfEveryEncoding) {
  const std::string_view texts[] = {
      "hello world", "  \n\n\t  ", "日本語のテキストと한국어", "مرحبا بالعالم", "😀😃😄😁🙂",
      "\xff", "\xff\xfe\xfd", "a\x80" "b\xc0" "c", "\xed\xa0\x80", "\xf0\x9f\x98", "1234567890"};
  for (std::string_view text : texts) {
    const MessageView messages[] = {{.role = "user", .content = text, .name = text}};
    const ChatPromptView prompt{.messages = messages};
    const std::uint64_t bound = chat_prompt_token_bound(prompt, {});
    for (EncodingId id : {EncodingId::cl100k_base, EncodingId::o200k_base}) {
      EXPECT_LE(count_chat_prompt(Encoding::get(id), prompt, {}), bound) << encoding_name(id) << " " << text;
      EXPECT_LE(Encoding::get(id).count(text), text.size() * 3) << text;
    }
  }
  // Text of invalid bytes alone may take more tokens than it has bytes: the bound covers it.
  const std::string invalid(64, '\xff');
  const MessageView messages[] = {{.role = "user", .content = invalid}};
  const ChatPromptView prompt{.messages = messages};
  EXPECT_GE(chat_prompt_token_bound(prompt, {}), 3u * invalid.size());
  for (EncodingId id : {EncodingId::cl100k_base, EncodingId::o200k_base})
    EXPECT_LE(count_chat_prompt(Encoding::get(id), prompt, {}), chat_prompt_token_bound(prompt, {}));
}

// --- Notebook examples with the real encodings ---------------------------------------

// The notebook's example_messages (section 6).
struct NotebookMessages {
  MessageView messages[6] = {
      {.role = "system",
       .content = "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
      {.role = "system", .content = "New synergies will help drive top-line growth.", .name = "example_user"},
      {.role = "system", .content = "Things working well together will increase revenue.", .name = "example_assistant"},
      {.role = "system",
       .content = "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
       .name = "example_user"},
      {.role = "system",
       .content = "Let's talk later when we're less busy about how to do better.",
       .name = "example_assistant"},
      {.role = "user",
       .content = "This late pivot means we don't have time to boil the ocean for the client deliverable."},
  };
};

std::uint64_t count_for_model(std::string_view model, const ChatPromptView& prompt) {
  const Encoding& enc = Encoding::get(encoding_for_model(model, EncodingId::o200k_base));
  return count_chat_prompt(enc, prompt, chat_count_options_for_model(model));
}

TEST(ChatCountNotebook, MessagesExampleMatchesPublishedCounts) {
  const NotebookMessages example;
  const ChatPromptView prompt{.messages = example.messages};
  // Notebook output: "129 prompt tokens counted by the OpenAI API" for gpt-3.5-turbo,
  // gpt-4-0613 and gpt-4; "124" for gpt-4o and gpt-4o-mini.
  EXPECT_EQ(count_for_model("gpt-3.5-turbo", prompt), 129u);
  EXPECT_EQ(count_for_model("gpt-4-0613", prompt), 129u);
  EXPECT_EQ(count_for_model("gpt-4", prompt), 129u);
  EXPECT_EQ(count_for_model("gpt-4o", prompt), 124u);
  EXPECT_EQ(count_for_model("gpt-4o-mini", prompt), 124u);
}

TEST(ChatCountNotebook, ToolsExampleMatchesPublishedCounts) {
  // The notebook's section 7 example: get_current_weather with a location and a unit enum.
  const std::string_view units[] = {"celsius", "fahrenheit"};
  const ToolPropertyView properties[] = {
      {.name = "location", .type = "string", .description = "The city and state, e.g. San Francisco, CA"},
      {.name = "unit", .type = "string", .description = "The unit of temperature to return", .enum_values = units}};
  const ToolView tools[] = {{.name = "get_current_weather",
                             .description = "Get the current weather in a given location",
                             .properties = properties}};
  const MessageView messages[] = {
      {.role = "system", .content = "You are a helpful assistant that can answer to questions about the weather."},
      {.role = "user", .content = "What's the weather like in San Francisco?"}};
  const ChatPromptView prompt{.messages = messages, .tools = tools};
  // Notebook output: 105 prompt tokens for gpt-3.5-turbo and gpt-4, 101 for gpt-4o and
  // gpt-4o-mini, each equal to the API's count.
  EXPECT_EQ(count_for_model("gpt-3.5-turbo", prompt), 105u);
  EXPECT_EQ(count_for_model("gpt-4", prompt), 105u);
  EXPECT_EQ(count_for_model("gpt-4o", prompt), 101u);
  EXPECT_EQ(count_for_model("gpt-4o-mini", prompt), 101u);
}

// --- Image cost ----------------------------------------------------------------------

TEST(ImageTokens, VisionGuideExamples) {
  const ChatCountOptions gpt4o = chat_count_options_for_model("gpt-4o");
  // "A 1024 x 1024 square image in detail: high mode costs 765 tokens."
  EXPECT_EQ(count_image_tokens(data_url("image/png", png(1024, 1024)), ImageDetail::high, gpt4o), 765u);
  // "A 2048 x 4096 image in detail: high mode costs 1105 tokens."
  EXPECT_EQ(count_image_tokens(data_url("image/png", png(2048, 4096)), ImageDetail::high, gpt4o), 1105u);
  // "A 4096 x 8192 image in detail: low most costs 85 tokens."
  EXPECT_EQ(count_image_tokens(data_url("image/png", png(4096, 8192)), ImageDetail::low, gpt4o), 85u);
}

TEST(ImageTokens, EachFormatGivesItsSizeAndTileCost) {
  for (const SampleImage& image : sample_images()) {
    SCOPED_TRACE(image.name);
    expect_size(image_size_from_data_url(image.url), image.width, image.height);
    EXPECT_EQ(count_image_tokens(image.url, ImageDetail::high, {}), image.gpt4o_tokens);
    EXPECT_EQ(count_image_tokens(image.url, ImageDetail::automatic, {}), image.gpt4o_tokens);
    EXPECT_EQ(count_image_tokens(image.url, ImageDetail::low, {}), 85u);
  }
}

TEST(ImageTokens, SmallImagesAreNotUpscaled) {
  // 100x100 stays 100x100: one tile, not the four a 768x768 upscale would need.
  EXPECT_EQ(count_image_tokens(data_url("image/png", png(100, 100)), ImageDetail::high, {}), 85u + 170u);
}

TEST(ImageTokens, RatesDependOnTheModelFamily) {
  const std::string url = data_url("image/png", png(128, 64));  // one tile
  EXPECT_EQ(count_image_tokens(url, ImageDetail::high, chat_count_options_for_model("gpt-4o-mini")), 2833u + 5667u);
  EXPECT_EQ(count_image_tokens(url, ImageDetail::low, chat_count_options_for_model("gpt-4o-mini")), 2833u);
  EXPECT_EQ(count_image_tokens(url, ImageDetail::high, chat_count_options_for_model("o1")), 75u + 150u);
  EXPECT_EQ(count_image_tokens(url, ImageDetail::high, chat_count_options_for_model("gpt-5")), 70u + 140u);
}

TEST(ImageTokens, PatchBilledModelsCountPatchesTimesMultiplier) {
  ChatCountOptions patches_only;
  patches_only.image_rates = {.patch_multiplier_milli = 1000};
  // Vision guide: 1024x1024 -> 32 x 32 = 1024 patches.
  EXPECT_EQ(count_image_tokens(data_url("image/png", png(1024, 1024)), ImageDetail::high, patches_only), 1024u);
  // Vision guide: 1800x2400 -> 57 x 75 = 4275 > 1536, shrunk to 1056x1408 -> 33 x 44 = 1452.
  EXPECT_EQ(count_image_tokens(data_url("image/png", png(1800, 2400)), ImageDetail::high, patches_only), 1452u);
  // gpt-4.1-mini: 1452 x 1.62 = 2352.24, billed as 2352; detail does not change it.
  const auto mini = chat_count_options_for_model("gpt-4.1-mini");
  EXPECT_EQ(count_image_tokens(data_url("image/png", png(1800, 2400)), ImageDetail::high, mini), 2352u);
  EXPECT_EQ(count_image_tokens(data_url("image/png", png(1800, 2400)), ImageDetail::low, mini), 2352u);
}

TEST(ImageTokens, UnknownSizeCostsTheConfiguredDefault) {
  ChatCountOptions options;
  EXPECT_EQ(count_image_tokens("https://example.com/cat.png", ImageDetail::automatic, options), 765u);
  EXPECT_EQ(count_image_tokens("https://example.com/cat.png", ImageDetail::low, options), 85u);
  EXPECT_EQ(count_image_tokens("data:image/png;base64,!!!!", ImageDetail::high, options), 765u);
  options.default_image_tokens = 1000;
  EXPECT_EQ(count_image_tokens("https://example.com/cat.png", ImageDetail::high, options), 1000u);
}

TEST(ImageTokens, ModelTablesFollowTheGuides) {
  EXPECT_EQ(image_token_rates_for_model("gpt-4o-2024-08-06").per_tile, 170u);
  EXPECT_EQ(image_token_rates_for_model("gpt-4o-mini-2024-07-18").base, 2833u);
  EXPECT_EQ(image_token_rates_for_model("ft:gpt-4o-mini-2024-07-18:acme::abc123").base, 2833u);
  EXPECT_EQ(image_token_rates_for_model("openai/gpt-4o-mini").base, 2833u);
  EXPECT_EQ(image_token_rates_for_model("o3").base, 75u);
  EXPECT_EQ(image_token_rates_for_model("gpt-4.1").base, 85u);
  EXPECT_EQ(image_token_rates_for_model("gpt-4.1-nano").patch_multiplier_milli, 2460u);
  EXPECT_EQ(image_token_rates_for_model("some-local-model").base, 85u);
  EXPECT_EQ(tool_token_rates_for_model("gpt-3.5-turbo-0125").func_init, 10);
  EXPECT_EQ(tool_token_rates_for_model("gpt-4-turbo").func_init, 10);
  EXPECT_EQ(tool_token_rates_for_model("gpt-4o-mini").func_init, 7);
  EXPECT_EQ(tool_token_rates_for_model("gpt-4.1").func_init, 7);
  EXPECT_EQ(tool_token_rates_for_model("o3-mini").func_init, 7);
}

// --- Data URL parsing ----------------------------------------------------------------

TEST(ImageSizeFromDataUrl, AcceptsCaseVariantsParametersAndUrlSafeUnpaddedBase64) {
  const Bytes image = png(33, 44);
  std::string encoded = base64(image);
  expect_size(image_size_from_data_url("DATA:image/png;BASE64," + encoded), 33, 44);
  expect_size(image_size_from_data_url("data:image/png;name=x.png;base64," + encoded), 33, 44);
  // The media type is not trusted: a PNG labelled JPEG is still read as a PNG.
  expect_size(image_size_from_data_url("data:image/jpeg;base64," + encoded), 33, 44);
  while (encoded.ends_with('=')) encoded.pop_back();
  for (char& c : encoded) c = c == '+' ? '-' : c == '/' ? '_' : c;
  expect_size(image_size_from_data_url("data:image/png;base64," + encoded), 33, 44);
}

TEST(ImageSizeFromDataUrl, RejectsWhatIsNotABase64ImageHeader) {
  const std::string encoded = base64(png(10, 10));
  EXPECT_FALSE(image_size_from_data_url("https://example.com/a.png"));
  EXPECT_FALSE(image_size_from_data_url("data:image/png," + encoded));         // not base64
  EXPECT_FALSE(image_size_from_data_url("data:image/png;base64" + encoded));   // no comma
  EXPECT_FALSE(image_size_from_data_url("data:image/png;base64,"));
  EXPECT_FALSE(image_size_from_data_url("data:text/plain;base64," + base64(Bytes{'h', 'e', 'l', 'l', 'o'})));
  EXPECT_FALSE(image_size_from_data_url("data:image/png;base64," + encoded.substr(0, 8) + "\n" + encoded.substr(8)));
  EXPECT_FALSE(image_size_from_data_url(data_url("image/png", png(0, 10))));
  EXPECT_FALSE(image_size_from_data_url(data_url("image/gif", gif(10, 0))));
  Bytes no_ihdr = png(10, 10);
  no_ihdr[12] = 'X';
  EXPECT_FALSE(image_size_from_data_url(data_url("image/png", no_ihdr)));
}

TEST(ImageSizeFromDataUrl, JpegWithBadSegmentLengthsIsRejected) {
  // Length 0 and 1 are smaller than the length field itself.
  EXPECT_FALSE(image_size_from_data_url(data_url("image/jpeg", {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01, 0xFF, 0xC0})));
  EXPECT_FALSE(image_size_from_data_url(data_url("image/jpeg", {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x00, 0xFF, 0xC0})));
  // A length that jumps past the end of the data.
  EXPECT_FALSE(image_size_from_data_url(data_url("image/jpeg", {0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 0x00})));
  // Start of scan before any frame header.
  EXPECT_FALSE(image_size_from_data_url(data_url("image/jpeg", {0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02})));
}

// Every prefix of every sample: either not enough header yet (nullopt) or the right size;
// never an out-of-bounds read (run under ASan) or a made-up size.
TEST(ImageSizeFromDataUrl, TruncatedDataIsRejectedNotMisread) {
  for (const SampleImage& image : sample_images()) {
    SCOPED_TRACE(image.name);
    const std::size_t payload_start = image.url.find(',') + 1;
    bool found_before_end = false;
    for (std::size_t end = 0; end <= image.url.size(); ++end) {
      // An exact-size heap copy, so that ASan flags a read one byte past the prefix.
      const std::vector<char> prefix(image.url.begin(), image.url.begin() + static_cast<std::ptrdiff_t>(end));
      const auto size = image_size_from_data_url(std::string_view(prefix.data(), prefix.size()));
      if (!size) continue;
      EXPECT_EQ(size->width, image.width);
      EXPECT_EQ(size->height, image.height);
      found_before_end = found_before_end || end < image.url.size();
    }
    // The header is enough: a truncated upload still gets its real cost.
    EXPECT_TRUE(found_before_end);
    EXPECT_GT(image.url.size(), payload_start);
  }
}

TEST(ImageSizeFromDataUrl, CorruptedCharactersAreRejectedNotMisread) {
  for (const SampleImage& image : sample_images()) {
    SCOPED_TRACE(image.name);
    const std::size_t payload_start = image.url.find(',') + 1;
    for (std::size_t i = payload_start; i < image.url.size(); ++i) {
      std::string corrupted = image.url;
      corrupted[i] = '*';
      const auto size = image_size_from_data_url(corrupted);
      if (!size) continue;
      EXPECT_EQ(size->width, image.width);
      EXPECT_EQ(size->height, image.height);
    }
  }
}

TEST(ImageSizeFromDataUrl, RandomBytesAfterEachSignatureNeverGiveAZeroSize) {
  const Bytes signatures[] = {{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'},
                              {0xFF, 0xD8},
                              {'G', 'I', 'F', '8', '9', 'a'},
                              {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P'}};
  std::mt19937 random(20240607);
  for (const Bytes& signature : signatures) {
    for (int round = 0; round < 2000; ++round) {
      Bytes bytes = signature;
      const std::size_t extra = random() % 64;
      for (std::size_t i = 0; i < extra; ++i) {
        // Bias towards bytes that steer the parsers: marker lead bytes and chunk names.
        const std::uint8_t steering[] = {0xFF, 0xC0, 0xDA, 'V', 'P', '8', ' ', 'L', 'X', 0x00};
        bytes.push_back(random() % 2 ? steering[random() % std::size(steering)] : static_cast<std::uint8_t>(random()));
      }
      const auto size = image_size_from_data_url(data_url("image/png", bytes));
      if (size) {
        EXPECT_GT(size->width, 0u);
        EXPECT_GT(size->height, 0u);
      }
    }
  }
}

}  // namespace
}  // namespace turnout::tokenizer
