#pragma once
// Admission by gateway key (server.api_keys): which configured key, if any, a request
// presents. Compared in constant time against every key, so timing reveals nothing.
//
// A key's id (in the ledger, the access log and /stats) is "key_" + the first 6 bytes of
// HMAC-SHA-256(installation secret, key) in hex. The secret lives in the ledger database
// (ledger/installation_secret.hpp), so ids are stable across restarts and across
// instances sharing a ledger, while an id cannot be checked against guessed keys by
// anyone who lacks the secret.
#include "listener/http_server.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace turnout::server {

// "key_" + 12 hex digits of HMAC-SHA-256(secret, key).
std::string client_key_id(std::string_view secret, std::string_view key);

class ClientKeys {
 public:
  ClientKeys(const std::vector<std::string>& keys, std::string_view secret);

  // Whether the gateway has keys at all (without, every request is admitted).
  bool required() const { return !keys_.empty(); }

  // The client key id ("" when the gateway has no keys); nullopt when the key is missing
  // or wrong. The id is derived from the key and never reveals it.
  std::optional<std::string> authenticate(const listener::HttpRequest& request) const;

 private:
  std::vector<std::pair<std::string, std::string>> keys_;  // key, key id
};

}  // namespace turnout::server
