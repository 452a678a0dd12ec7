// Client key ids (issue 21, item 9): "key_" + 12 hex digits of HMAC-SHA-256 keyed by the
// installation secret, so an id seen in a log, /stats or the ledger cannot be checked
// against guessed keys without the secret; the same secret gives the same id.
#include "server/client_keys.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using turnout::server::ClientKeys;
using turnout::server::client_key_id;
using turnout::listener::HttpRequest;

TEST(ClientKeyId, IsTheTruncatedHmacSha256OfTheKeyUnderTheSecret) {
  // RFC 4231 test case 2.
  EXPECT_EQ(client_key_id("Jefe", "what do ya want for nothing?"), "key_5bdcc146bf60");
  EXPECT_EQ(client_key_id("0123456789abcdef", "tk-good-key-one-a1"), "key_08b9fbe87dc9");
}

TEST(ClientKeyId, IsNotTheUnsaltedHash) {
  // The old id: the first 6 bytes of SHA-256(key), which anyone can recompute from a guess.
  EXPECT_NE(client_key_id("0123456789abcdef", "tk-good-key-one-a1"), "key_766eaedda652");
  EXPECT_NE(client_key_id("secret-a", "tk-key"), client_key_id("secret-b", "tk-key"));
  EXPECT_EQ(client_key_id("secret-a", "tk-key"), client_key_id("secret-a", "tk-key"));
}

HttpRequest with_bearer(const std::string& key) {
  HttpRequest request;
  request.set(boost::beast::http::field::authorization, "Bearer " + key);
  return request;
}

TEST(ClientKeys, AuthenticateReturnsTheKeyedId) {
  const ClientKeys keys({"tk-one", "tk-two"}, "installation-secret");
  EXPECT_TRUE(keys.required());
  EXPECT_EQ(keys.authenticate(with_bearer("tk-two")), client_key_id("installation-secret", "tk-two"));
  EXPECT_EQ(keys.authenticate(with_bearer("tk-three")), std::nullopt);
  EXPECT_EQ(keys.authenticate(HttpRequest{}), std::nullopt);

  const ClientKeys none({}, "installation-secret");
  EXPECT_FALSE(none.required());
  EXPECT_EQ(none.authenticate(HttpRequest{}), std::string{});
}

}  // namespace
