#include "server/client_keys.hpp"

#include <boost/beast/core/string.hpp>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace turnout::server {
namespace {

std::string key_id_for(std::string_view key) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(key.data(), key.size(), digest, &len, EVP_sha256(), nullptr);
  std::string id = "key_";
  for (unsigned i = 0; i < 6 && i < len; ++i) id += fmt::format("{:02x}", digest[i]);
  return id;
}

}  // namespace

ClientKeys::ClientKeys(const std::vector<std::string>& keys) {
  for (const auto& key : keys) keys_.emplace_back(key, key_id_for(key));
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
