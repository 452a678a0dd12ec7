#pragma once
// The vocabulary files embedded at build time (embedded_vocabularies.S.in).
#include <string_view>

extern "C" {
extern const char turnout_cl100k_base_tiktoken_begin[];
extern const char turnout_cl100k_base_tiktoken_end[];
extern const char turnout_o200k_base_tiktoken_begin[];
extern const char turnout_o200k_base_tiktoken_end[];
}

namespace turnout::tokenizer {

inline std::string_view embedded_cl100k_base_tiktoken() {
  return {turnout_cl100k_base_tiktoken_begin, turnout_cl100k_base_tiktoken_end};
}
inline std::string_view embedded_o200k_base_tiktoken() {
  return {turnout_o200k_base_tiktoken_begin, turnout_o200k_base_tiktoken_end};
}

}  // namespace turnout::tokenizer
