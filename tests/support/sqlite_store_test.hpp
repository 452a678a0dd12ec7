#pragma once
// The SQLite ledger a governance or admission test works on: a fresh directory per test
// (named by a prefix, the process and the running test, so parallel programs never share
// one), removed when the fixture goes; the governance store open on it; and call records
// written through the ledger's own SQLite backend, whose writer settles the holds and
// leases they name.
#include "governance/store.hpp"
#include "ledger/backend.hpp"
#include "ledger/sqlite/backend.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace turnout::test {

class SqliteLedgerDir {
 public:
  explicit SqliteLedgerDir(std::string_view prefix)
      : path_(std::filesystem::temp_directory_path() /
              (std::string(prefix) + std::to_string(::getpid()) + "-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~SqliteLedgerDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  SqliteLedgerDir(const SqliteLedgerDir&) = delete;
  SqliteLedgerDir& operator=(const SqliteLedgerDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path ledger_file() const { return path_ / "ledger.db"; }
  std::string ledger_url() const { return "sqlite:" + ledger_file().string(); }

  // Writes one call record through the ledger's SQLite backend, as the gateway's writer does.
  void write_record(const ledger::KeyedRecord& keyed) const {
    auto backend = ledger::SqliteBackend::open(ledger_file().string());
    ASSERT_TRUE(backend) << backend.error().message;
    ASSERT_TRUE((*backend)->write_batch(std::span(&keyed, 1)));
  }

 private:
  std::filesystem::path path_;
};

// A fixture with its own SQLite ledger and the governance store open on it (SetUp).
class SqliteStoreTest : public ::testing::Test {
 protected:
  explicit SqliteStoreTest(std::string_view prefix) : dir_(prefix) {}
  void SetUp() override {
    store_ = open_store();
    ASSERT_TRUE(store_);
  }
  void TearDown() override { store_.reset(); }

  // A store on the test's ledger (another one: a second replica); null when it cannot open.
  std::unique_ptr<governance::GovernanceStore> open_store() const {
    auto store = governance::GovernanceStore::open(dir_.ledger_url());
    EXPECT_TRUE(store) << store.error().message;
    return store ? std::move(*store) : nullptr;
  }

  SqliteLedgerDir dir_;
  std::unique_ptr<governance::GovernanceStore> store_;
};

}  // namespace turnout::test
