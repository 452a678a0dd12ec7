// The admin API's body as Fields (governance/fields_json.hpp): exact money, null clearing
// on updates only, and errors naming the field.
#include "governance/fields_json.hpp"

#include <gtest/gtest.h>

namespace turnout::governance {
namespace {

TEST(FieldsJson, ReadsEveryFieldWithExactMoney) {
  auto fields = parse_fields_json(
      R"({"name":"app","team":"t1","models":["a","b"],"expires_at":"2027-01-01T00:00:00Z","budget_usd":0.01,)"
      R"("budget_period":"week","timezone":"Europe/Berlin","rpm":60,"tpm":1000,"max_parallel":4})",
      FieldsFor::key, false);
  ASSERT_TRUE(fields) << fields.error().message;
  EXPECT_EQ(fields->name, "app");
  EXPECT_EQ(fields->team.value, "t1");
  EXPECT_EQ(fields->models.value, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(fields->expires_at_ms.value, 1798761600000);
  EXPECT_EQ(fields->budget_pico.value, 10'000'000'000);  // $0.01 exactly, not through a double
  EXPECT_EQ(fields->budget_period, BudgetPeriod::week);
  EXPECT_EQ(fields->timezone, "Europe/Berlin");
  EXPECT_EQ(fields->rpm.value, 60u);
  EXPECT_EQ(fields->tpm.value, 1000u);
  EXPECT_EQ(fields->max_parallel.value, 4u);
}

TEST(FieldsJson, MoneyAsStringAndManyPlaces) {
  auto fields = parse_fields_json(R"({"budget_usd":"250.000000000001"})", FieldsFor::team, true);
  ASSERT_TRUE(fields);
  EXPECT_EQ(fields->budget_pico.value, 250'000'000'000'001);
}

TEST(FieldsJson, NullClearsOnUpdateOnly) {
  auto update = parse_fields_json(R"({"rpm":null,"models":null,"team":null})", FieldsFor::key, true);
  ASSERT_TRUE(update);
  EXPECT_TRUE(update->rpm.clear);
  EXPECT_TRUE(update->models.clear);
  EXPECT_TRUE(update->team.clear);
  auto create = parse_fields_json(R"({"rpm":null})", FieldsFor::key, false);
  ASSERT_TRUE(create);
  EXPECT_FALSE(create->rpm.given());
}

TEST(FieldsJson, ErrorsNameTheField) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {R"({"rpm":0})", "rpm"},
      {R"({"rpm":-3})", "rpm"},
      {R"({"tpm":2.5})", "tpm"},
      {R"({"max_parallel":"4"})", "max_parallel"},
      {R"({"budget_usd":1e3})", "budget_usd"},
      {R"({"budget_usd":true})", "budget_usd"},
      {R"({"budget_period":"year"})", "budget_period"},
      {R"({"models":["a",1]})", "models"},
      {R"({"expires_at":"soon"})", "expires_at"},
      {R"({"name":null})", "name"},
      {R"({"owner":"x"})", "owner"},
      {R"({"team":"x"})", "team"},  // teams have no team
  };
  for (const auto& [body, param] : cases) {
    auto fields = parse_fields_json(body, FieldsFor::team, true);
    ASSERT_FALSE(fields) << body;
    EXPECT_EQ(fields.error().param, param) << body;
    EXPECT_NE(fields.error().message.find(param), std::string::npos) << body;
  }
}

TEST(FieldsJson, RefusesWhatIsNotOneObject) {
  for (const std::string body : {"[1]", "\"x\"", "{\"name\":\"a\"} extra", "{\"name\":", "\xff"}) {
    auto fields = parse_fields_json(body, FieldsFor::key, false);
    ASSERT_FALSE(fields) << body;
    EXPECT_EQ(fields.error().param, "") << body;
  }
  EXPECT_FALSE(parse_fields_json("", FieldsFor::key, true));  // an update must name something
  EXPECT_TRUE(parse_fields_json("", FieldsFor::key, false));  // a create may (the store asks for name)
}

}  // namespace
}  // namespace turnout::governance
