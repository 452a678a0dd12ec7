#pragma once
// Requests per minute as clients already understand them (SPEC §8): OpenAI's
// x-ratelimit-{limit,remaining,reset}-requests headers on every response to a key with an
// rpm, and the 429 rate_limit_exceeded refusal with retry-after / retry-after-ms and the
// message "Limit L, Used U, Requested R".
#include "admit/admission.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace turnout::admit {

// OpenAI's duration syntax: "20ms", "1s", "1.5s", "6m0s", "1h2m3s".
std::string openai_duration(std::int64_t ms);

// The headers for `window` (the tightest rpm window); `admitted`: this request counted.
std::vector<Header> request_limit_headers(const governance::RequestWindow& window, bool admitted, std::int64_t now_ms);

Refusal rate_refusal(const KeyGrant& grant, const governance::RequestWindow& window, std::int64_t now_ms);

}  // namespace turnout::admit
