#pragma once
// A private PostgreSQL cluster for one test program (scripts/pg-test-cluster.sh: a fresh
// initdb on a free loopback port, started once, stopped at the end), and a fresh schema
// per test so tests never see each other's records. A program on a machine without the
// PostgreSQL server binaries skips its PostgreSQL tests.
#include "ledger/postgres/connection.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>

namespace turnout::test {

class PgTestCluster {
 public:
  // Starts the cluster; call from SetUpTestSuite.
  static void start() {
    State& state = shared();
    std::string pattern = (std::filesystem::temp_directory_path() / "turnout-pg-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      state.error = "mkdtemp failed";
      return;
    }
    const auto [status, output] = run(script() + " start " + pattern);
    if (status == kNoPostgres) {
      std::filesystem::remove_all(pattern);
      state.missing_binaries = true;
      return;
    }
    state.dir = pattern;
    if (status != 0) {
      state.error = "pg-test-cluster.sh start failed (status " + std::to_string(status) + ")";
      return;
    }
    state.base_url = output.substr(0, output.find('\n'));
  }

  // Stops it; call from TearDownTestSuite.
  static void stop() {
    State& state = shared();
    if (!state.dir.empty()) run(script() + " stop " + state.dir);
    state.dir.clear();
  }

  // Without the server binaries a test skips; if the cluster failed to start, error() says why.
  static bool missing_binaries() { return shared().missing_binaries; }
  static const std::string& error() { return shared().error; }

  // Drops and creates `schema`, empty.
  static Result<void> create_schema(const std::string& schema) {
    auto target = ledger::pg::ConnectionTarget::parse(base_url());
    if (!target) return target.error();
    auto admin = ledger::pg::Connection::open(*target);
    if (!admin) return admin.error();
    return admin->exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE; CREATE SCHEMA " + schema);
  }

  // postgresql://turnout:<password>@127.0.0.1:<port>/turnout
  static const std::string& base_url() { return shared().base_url; }

  // The ledger URL confined to `schema` (its search_path).
  static std::string url_for(const std::string& schema) { return base_url() + "?options=-csearch_path%3D" + schema; }

  static std::string password() {
    const std::string& url = base_url();
    const std::size_t colon = url.find(':', url.find("://") + 3);
    return url.substr(colon + 1, url.find('@') - colon - 1);
  }

  // A schema name for the running test: `prefix` + its name, lower case, within the
  // 63-byte identifier limit.
  static std::string schema_for_current_test(const std::string& prefix) {
    std::string name = prefix + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return name.substr(0, 60);
  }

 private:
  static constexpr int kNoPostgres = 3;  // the script's status for "server binaries not installed"

  struct State {
    std::string dir;
    std::string base_url;
    std::string error;
    bool missing_binaries = false;
  };
  static State& shared() {
    static State state;
    return state;
  }
  static std::string script() { return std::string(TURNOUT_SOURCE_DIR) + "/scripts/pg-test-cluster.sh"; }

  static std::pair<int, std::string> run(const std::string& command) {
    std::string output;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) return {-1, output};
    std::array<char, 512> chunk{};
    while (std::fgets(chunk.data(), static_cast<int>(chunk.size()), pipe) != nullptr) output += chunk.data();
    const int raw = ::pclose(pipe);
    return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, output};
  }
};

// A test fixture on the program's one cluster: each test gets a fresh, empty schema named
// `prefix` + its name, and url() confined to it. Without the server binaries it skips.
class PgSchemaTest : public ::testing::Test {
 protected:
  explicit PgSchemaTest(std::string prefix) : prefix_(std::move(prefix)) {}

  static void SetUpTestSuite() { PgTestCluster::start(); }
  static void TearDownTestSuite() { PgTestCluster::stop(); }

  void SetUp() override {
    if (PgTestCluster::missing_binaries()) GTEST_SKIP() << "PostgreSQL server binaries are not installed";
    ASSERT_TRUE(PgTestCluster::error().empty()) << PgTestCluster::error();
    schema_ = PgTestCluster::schema_for_current_test(prefix_);
    auto created = PgTestCluster::create_schema(schema_);
    ASSERT_TRUE(created) << created.error().message;
  }

  // The ledger URL confined to this test's schema.
  std::string url() const { return PgTestCluster::url_for(schema_); }
  static std::string password() { return PgTestCluster::password(); }
  static const std::string& base_url() { return PgTestCluster::base_url(); }

  std::string schema_;

 private:
  std::string prefix_;
};

}  // namespace turnout::test
