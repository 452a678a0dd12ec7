// The route table's matching (server/route_table.hpp): "{id}" takes exactly one segment,
// several methods share a path, and a path with another method reports every method.
#include "server/route_table.hpp"

#include <gtest/gtest.h>

namespace turnout::server {
namespace {

TEST(RouteTable, MatchesAnIdSegmentAndTheMethod) {
  const RouteMatch show = find_route("/admin/v1/keys/0123456789abcdef", http::verb::get);
  ASSERT_NE(show.entry, nullptr);
  EXPECT_TRUE(show.method_allowed);
  EXPECT_EQ(show.entry->handler, &endpoints::admin_show_key);
  EXPECT_EQ(show.path_id, "0123456789abcdef");
  const RouteMatch update = find_route("/admin/v1/keys/abc", http::verb::patch);
  ASSERT_NE(update.entry, nullptr);
  EXPECT_EQ(update.entry->handler, &endpoints::admin_update_key);
  const RouteMatch rotate = find_route("/admin/v1/keys/abc/rotate", http::verb::post);
  ASSERT_NE(rotate.entry, nullptr);
  EXPECT_EQ(rotate.entry->handler, &endpoints::admin_rotate_key);
  EXPECT_EQ(rotate.path_id, "abc");
  EXPECT_EQ(find_route("/admin/v1/keys", http::verb::post).entry->handler, &endpoints::admin_create_key);
  EXPECT_EQ(find_route("/admin/v1/keys", http::verb::get).entry->handler, &endpoints::admin_list_keys);
}

TEST(RouteTable, AnIdIsOneNonEmptySegment) {
  EXPECT_EQ(find_route("/admin/v1/keys/", http::verb::get).entry, nullptr);
  EXPECT_EQ(find_route("/admin/v1/keys/a/b", http::verb::get).entry, nullptr);
  EXPECT_EQ(find_route("/admin/v1/keys//rotate", http::verb::post).entry, nullptr);
  EXPECT_EQ(find_route("/admin/v1/teams/x/rotate", http::verb::post).entry, nullptr);
}

TEST(RouteTable, AnotherMethodListsEveryMethodOfThePath) {
  const RouteMatch wrong = find_route("/admin/v1/keys/abc", http::verb::delete_);
  ASSERT_NE(wrong.entry, nullptr);
  EXPECT_FALSE(wrong.method_allowed);
  EXPECT_EQ(wrong.allowed_methods, "GET, PATCH");
  const RouteMatch exact = find_route("/v1/models", http::verb::post);
  EXPECT_FALSE(exact.method_allowed);
  EXPECT_EQ(exact.allowed_methods, "GET");
  EXPECT_EQ(find_route("/v1/nothing", http::verb::get).entry, nullptr);
}

}  // namespace
}  // namespace turnout::server
