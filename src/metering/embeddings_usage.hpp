#pragma once
// Meter stage for POST /v1/embeddings: an embeddings response bills its input only
// (usage {prompt_tokens, total_tokens}); nothing is generated, so completion tokens are 0.
#include "metering/usage.hpp"

#include <simdjson.h>

#include <cstdint>
#include <optional>

namespace turnout::metering {

// The reported usage.prompt_tokens, else the gateway's own count (`counted_tokens`).
// nullopt when the body is not an embeddings list (no `data` array).
std::optional<MeteredUsage> meter_embeddings(simdjson::dom::element root, std::uint64_t counted_tokens);

}  // namespace turnout::metering
