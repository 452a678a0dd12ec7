#include "tokenizer/unicode_classes.hpp"

namespace turnout::tokenizer {

// Kept out of the generated unicode_tables.cpp: derived from it, not generated.
std::array<std::uint8_t, detail::kDirectFlagsEnd> detail::make_direct_flags() {
  std::array<std::uint8_t, kDirectFlagsEnd> flags{};
  for (char32_t code_point = 0; code_point < kDirectFlagsEnd; ++code_point) {
    flags[code_point] = code_point < 0x80 ? kAsciiFlags[code_point] : flags_of_class(unicode_class_of(code_point));
  }
  return flags;
}

}  // namespace turnout::tokenizer
