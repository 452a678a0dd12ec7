#pragma once
// Virtual keys: "tk-<public id>-<secret>". The public id names the key everywhere (ledger,
// logs, errors, admin API); the secret is 256 bits from OpenSSL's CSPRNG, shown once, and
// only its SHA-256 is stored. A presented secret is compared to the stored hash in
// constant time.
#include "common/result.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace turnout::governance {

inline constexpr std::string_view kVirtualKeyPrefix = "tk-";

struct NewVirtualKey {
  std::string public_id;      // 16 lowercase hex digits
  std::string key;            // the whole key, for the one answer that shows it
  std::string secret_sha256;  // what is stored
};

// A fresh key, or an error when the CSPRNG fails.
Result<NewVirtualKey> generate_virtual_key(std::string_view public_id = {});

struct PresentedKey {
  std::string_view public_id;
  std::string_view secret;
};

// Whether `token` looks like a virtual key (starts with "tk-"): such a token is never
// compared against server.api_keys.
bool looks_like_virtual_key(std::string_view token);

// Splits a well-formed virtual key; nullopt for anything else.
std::optional<PresentedKey> parse_virtual_key(std::string_view token);

// Lowercase hex SHA-256 of `text`.
std::string sha256_hex(std::string_view text);

// Whether `secret` hashes to `stored_sha256` (constant time in the hash comparison).
bool secret_matches(std::string_view secret, std::string_view stored_sha256);

// `bytes` random bytes from the CSPRNG as lowercase hex (hold ids, key material).
Result<std::string> random_hex(std::size_t bytes);

// A public id is 16 lowercase hex digits: anything else is refused before a lookup.
bool valid_public_id(std::string_view id);

}  // namespace turnout::governance
