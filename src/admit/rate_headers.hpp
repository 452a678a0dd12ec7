#pragma once
// Rate limits as clients already understand them (SPEC §8): OpenAI's
// x-ratelimit-{limit,remaining,reset}-{requests,tokens} headers on every response to a key
// with an rpm or tpm, and the 429 rate_limit_exceeded refusal with retry-after /
// retry-after-ms and the message "Limit L, Used U, Requested R" (for rpm, tpm and
// max_parallel alike).
#include "admit/admission.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace turnout::admit {

// OpenAI's duration syntax: "20ms", "1s", "1.5s", "6m0s", "1h2m3s".
std::string openai_duration(std::int64_t ms);

// The headers for `window` (the tightest rpm or tpm window: -requests or -tokens);
// `admitted`: this request's `requested` counted.
std::vector<Header> request_limit_headers(const governance::RequestWindow& window, bool admitted, std::int64_t now_ms);

Refusal rate_refusal(const KeyGrant& grant, const governance::RequestWindow& window, std::int64_t now_ms);

}  // namespace turnout::admit
