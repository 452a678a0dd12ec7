#include "governance/virtual_key.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>

namespace turnout::governance {
namespace {

constexpr std::size_t kPublicIdBytes = 8;
constexpr std::size_t kSecretBytes = 32;  // 256 bits

bool is_lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string to_hex(const unsigned char* bytes, std::size_t size) {
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) out += fmt::format("{:02x}", bytes[i]);
  return out;
}

}  // namespace

Result<std::string> random_hex(std::size_t bytes) {
  std::array<unsigned char, 64> buffer{};
  if (bytes > buffer.size() || RAND_bytes(buffer.data(), static_cast<int>(bytes)) != 1) {
    return make_error("the system's random number generator failed; no key was made");
  }
  std::string hex = to_hex(buffer.data(), bytes);
  OPENSSL_cleanse(buffer.data(), buffer.size());
  return Result<std::string>(boost::system::in_place_value, std::move(hex));
}

Result<NewVirtualKey> generate_virtual_key(std::string_view public_id) {
  NewVirtualKey made;
  if (public_id.empty()) {
    auto id = random_hex(kPublicIdBytes);
    if (!id) return id.error();
    made.public_id = std::move(*id);
  } else {
    made.public_id = std::string(public_id);  // rotation keeps the id
  }
  auto secret = random_hex(kSecretBytes);
  if (!secret) return secret.error();
  made.secret_sha256 = sha256_hex(*secret);
  made.key = fmt::format("{}{}-{}", kVirtualKeyPrefix, made.public_id, *secret);
  OPENSSL_cleanse(secret->data(), secret->size());
  return made;
}

bool looks_like_virtual_key(std::string_view token) { return token.starts_with(kVirtualKeyPrefix); }

bool valid_public_id(std::string_view id) { return id.size() == kPublicIdBytes * 2 && is_lower_hex(id); }

std::optional<PresentedKey> parse_virtual_key(std::string_view token) {
  if (!looks_like_virtual_key(token)) return std::nullopt;
  const std::string_view rest = token.substr(kVirtualKeyPrefix.size());
  const auto dash = rest.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const std::string_view id = rest.substr(0, dash);
  const std::string_view secret = rest.substr(dash + 1);
  if (!valid_public_id(id) || secret.size() != kSecretBytes * 2 || !is_lower_hex(secret)) return std::nullopt;
  return PresentedKey{id, secret};
}

std::string sha256_hex(std::string_view text) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
  return to_hex(digest.data(), digest.size());
}

bool secret_matches(std::string_view secret, std::string_view stored_sha256) {
  const std::string presented = sha256_hex(secret);
  return presented.size() == stored_sha256.size() &&
         CRYPTO_memcmp(presented.data(), stored_sha256.data(), presented.size()) == 0;
}

}  // namespace turnout::governance
