#pragma once
// Parse stage: the storage behind a tokenizer::ChatPromptView, shared by the parsers whose
// bodies are counted as a chat prompt (chat completions, Responses). Views point into these
// vectors, so they are cleared, not freed, between requests (no allocation once warm).
#include "server/tool_definitions.hpp"
#include "tokenizer/chat_count.hpp"

#include <optional>
#include <string_view>
#include <vector>

namespace turnout::server {

struct PromptBuffers {
  std::vector<tokenizer::MessageView> messages;
  std::vector<tokenizer::ContentPartView> parts;
  std::vector<tokenizer::ToolCallView> tool_calls;
  ToolDefinitions tool_definitions;

  void clear() {
    messages.clear();
    parts.clear();
    tool_calls.clear();
    tool_definitions.clear();
  }
};

// An image part's `detail` as OpenAI reads it: "low", "high", anything else (or absent) auto.
inline tokenizer::ImageDetail image_detail(std::optional<std::string_view> detail) {
  if (detail == "low") return tokenizer::ImageDetail::low;
  if (detail == "high") return tokenizer::ImageDetail::high;
  return tokenizer::ImageDetail::automatic;
}

}  // namespace turnout::server
