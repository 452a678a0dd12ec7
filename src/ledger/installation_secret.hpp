#pragma once
// The installation secret: random bytes created once per ledger database and kept in its
// `metadata` table (name `installation_secret`), so every gateway instance sharing the
// database, and every restart, reads the same one. It keys the HMAC behind client key ids
// (server/client_keys.hpp), so a key id cannot be checked against guessed keys without it.
#include "common/result.hpp"

#include <string>
#include <string_view>

namespace turnout::ledger {

inline constexpr std::string_view kInstallationSecretName = "installation_secret";

// 32 bytes from the kernel's CSPRNG, as 64 lowercase hex digits.
Result<std::string> new_installation_secret();

}  // namespace turnout::ledger
