#include "server/client_keys.hpp"

#include <boost/beast/core/string.hpp>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>

namespace turnout::server {

std::string client_key_id(std::string_view secret, std::string_view key) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest, &len) == nullptr) {
    throw std::runtime_error("HMAC-SHA-256 failed");  // at start-up only
  }
  std::string id = "key_";
  for (unsigned i = 0; i < 6 && i < len; ++i) id += fmt::format("{:02x}", digest[i]);
  return id;
}

ClientKeys::ClientKeys(const std::vector<std::string>& keys, std::string_view secret) {
  for (const auto& key : keys) keys_.emplace_back(key, client_key_id(secret, key));
}

std::optional<std::string> ClientKeys::authenticate(const listener::HttpRequest& request) const {
  if (keys_.empty()) return std::string{};
  std::string_view auth = request[boost::beast::http::field::authorization];
  constexpr std::string_view bearer = "Bearer ";
  if (auth.size() <= bearer.size() || !boost::beast::iequals(auth.substr(0, bearer.size()), bearer)) return std::nullopt;
  const std::string_view presented = auth.substr(bearer.size());
  std::optional<std::string> match;
  for (const auto& [key, id] : keys_) {
    if (key.size() == presented.size() && CRYPTO_memcmp(key.data(), presented.data(), key.size()) == 0) match = id;
  }
  return match;
}

}  // namespace turnout::server
