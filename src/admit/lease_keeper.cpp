#include "admit/lease_keeper.hpp"

namespace turnout::admit {

LeaseKeeper::LeaseKeeper(LeasePool& pool, std::chrono::milliseconds interval, NowMs now)
    : pool_(pool), interval_(interval), now_(std::move(now)), thread_([this](std::stop_token stop) { run(std::move(stop)); }) {}

LeaseKeeper::~LeaseKeeper() {
  thread_.request_stop();
  wake_.notify_all();
  thread_.join();
  pool_.return_unused(now_(), true);
}

void LeaseKeeper::run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, stop, interval_, [] { return false; });  // a tick, or the stop
    }
    if (stop.stop_requested()) break;
    pool_.return_unused(now_());
  }
}

}  // namespace turnout::admit
