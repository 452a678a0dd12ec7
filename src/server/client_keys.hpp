#pragma once
// Admission by gateway key (server.api_keys): which configured key, if any, a request
// presents. Compared in constant time against every key, so timing reveals nothing.
#include "listener/http_server.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace turnout::server {

class ClientKeys {
 public:
  explicit ClientKeys(const std::vector<std::string>& keys);

  // The client key id ("" when the gateway has no keys); nullopt when the key is missing
  // or wrong. The id is derived from the key and never reveals it.
  std::optional<std::string> authenticate(const listener::HttpRequest& request) const;

 private:
  std::vector<std::pair<std::string, std::string>> keys_;  // key, key id
};

}  // namespace turnout::server
