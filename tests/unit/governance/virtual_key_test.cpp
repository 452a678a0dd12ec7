// Virtual keys (issue 17, item 1): tk-<public id>-<secret>, 256-bit secret, only its hash kept.
#include "governance/virtual_key.hpp"

#include <gtest/gtest.h>

namespace {

using namespace turnout::governance;

TEST(VirtualKey, GeneratedKeyParsesAndMatchesOnlyItsHash) {
  auto made = generate_virtual_key();
  ASSERT_TRUE(made);
  EXPECT_TRUE(made->key.starts_with("tk-" + made->public_id + "-"));
  auto parsed = parse_virtual_key(made->key);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->public_id, made->public_id);
  EXPECT_EQ(parsed->secret.size(), 64U);  // 32 bytes = 256 bits, hex
  EXPECT_TRUE(secret_matches(parsed->secret, made->secret_sha256));
  // The stored hash is not the secret.
  EXPECT_EQ(made->secret_sha256.find(parsed->secret), std::string::npos);
  std::string wrong(parsed->secret);
  wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(secret_matches(wrong, made->secret_sha256));
}

TEST(VirtualKey, TwoKeysDiffer) {
  auto a = generate_virtual_key();
  auto b = generate_virtual_key();
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->public_id, b->public_id);
  EXPECT_NE(a->key, b->key);
}

TEST(VirtualKey, RotationKeepsTheIdAndChangesTheSecret) {
  auto a = generate_virtual_key();
  ASSERT_TRUE(a);
  auto rotated = generate_virtual_key(a->public_id);
  ASSERT_TRUE(rotated);
  EXPECT_EQ(rotated->public_id, a->public_id);
  EXPECT_NE(rotated->secret_sha256, a->secret_sha256);
}

TEST(VirtualKey, MalformedTokensAreRefused) {
  EXPECT_FALSE(parse_virtual_key("sk-abc"));
  EXPECT_FALSE(parse_virtual_key("tk-"));
  EXPECT_FALSE(parse_virtual_key("tk-0123456789abcdef"));
  EXPECT_FALSE(parse_virtual_key("tk-0123456789abcdef-short"));
  EXPECT_FALSE(parse_virtual_key("tk-0123456789ABCDEF-" + std::string(64, 'a')));
  EXPECT_TRUE(parse_virtual_key("tk-0123456789abcdef-" + std::string(64, 'a')));
}

}  // namespace
