#pragma once
// Lease mode: gives back the unused part of this replica's idle, expired and dropped
// leases on a timer (lease_pool.hpp), and of every lease when it stops (shutdown), so a
// budget's slices do not sit on a replica that no longer spends them.
#include "admit/admission.hpp"
#include "admit/lease_pool.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace turnout::admit {

class LeaseKeeper {
 public:
  LeaseKeeper(LeasePool& pool, std::chrono::milliseconds interval, NowMs now = system_now_ms);
  // Stops the timer (at once, even mid-wait), then gives back every lease's unused part.
  ~LeaseKeeper();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

 private:
  void run(std::stop_token stop);

  LeasePool& pool_;
  const std::chrono::milliseconds interval_;
  const NowMs now_;
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_;  // last: started once everything it uses exists
};

}  // namespace turnout::admit
