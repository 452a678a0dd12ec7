#pragma once
// Charges expired holds on a timer, so a hold left by a crashed replica stops holding
// budget, tokens and a slot within `interval` of its expiry even when no call on its key
// or team comes to sweep it. Every replica runs one; a hold is deleted by exactly one
// sweep (DELETE ... RETURNING), so running several charges nothing twice.
#include "admit/admission.hpp"
#include "governance/store.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace turnout::admit {

class HoldSweeper {
 public:
  // `on_swept(n)`: called after a sweep that charged n > 0 holds (for the log).
  HoldSweeper(governance::GovernanceStore& store, std::chrono::milliseconds interval,
              std::function<void(std::uint64_t)> on_swept, NowMs now = system_now_ms);
  ~HoldSweeper();  // stops the thread (at once, even mid-wait) and waits for it
  HoldSweeper(const HoldSweeper&) = delete;
  HoldSweeper& operator=(const HoldSweeper&) = delete;

  // Holds this replica's sweeper has charged by expiry.
  std::uint64_t swept() const { return swept_.load(); }

 private:
  void run(std::stop_token stop);

  governance::GovernanceStore& store_;
  const std::chrono::milliseconds interval_;
  const std::function<void(std::uint64_t)> on_swept_;
  const NowMs now_;
  std::atomic<std::uint64_t> swept_{0};
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_;  // last: started once everything it uses exists
};

}  // namespace turnout::admit
