#pragma once
// Standard, padded base64 (RFC 4648 §4) of raw bytes.
#include <string>
#include <string_view>

namespace turnout {

std::string base64_encode(std::string_view bytes);

}  // namespace turnout
