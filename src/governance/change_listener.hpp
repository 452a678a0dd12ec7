#pragma once
// Revocation that reaches every replica at once, on PostgreSQL (issue 17, item 6): each
// admin write on a key or team NOTIFYs kChangeChannel with its scope ("key:<id>",
// "team:<id>") in the write's own transaction, so the message goes out exactly when the
// change is committed (GovernanceStore::modify_key / modify_team). Every replica runs a
// ChangeListener: its own connection, LISTENing, on its own thread, calling `on_change`
// with each scope so the admit stage's key cache drops it. A lost connection is reopened
// (a notification sent while it was down is missed: the cache TTL still bounds how long a
// stale entry lives). SQLite has no NOTIFY: there the TTL alone applies.
#include "common/result.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

namespace turnout::governance {

inline constexpr const char* kChangeChannel = "turnout_governance";

class ChangeListener {
 public:
  using OnChange = std::function<void(std::string_view scope)>;

  // Null when the ledger is not PostgreSQL. The first connection is made on the thread
  // (and retried), so a database that is briefly away does not stop the gateway.
  static Result<std::unique_ptr<ChangeListener>> start(const std::string& ledger_url, OnChange on_change);
  ~ChangeListener();  // stops (within its poll interval) and joins
  ChangeListener(const ChangeListener&) = delete;
  ChangeListener& operator=(const ChangeListener&) = delete;

  // True while LISTENing (for tests and the log).
  bool listening() const { return listening_.load(); }

 private:
  ChangeListener(std::string conninfo, OnChange on_change);
  void run(std::stop_token stop);

  const std::string conninfo_;
  const OnChange on_change_;
  std::atomic<bool> listening_{false};
  std::jthread thread_;  // last: started once everything it uses exists
};

}  // namespace turnout::governance
