#include "admit/hold_sweeper.hpp"

namespace turnout::admit {

HoldSweeper::HoldSweeper(governance::GovernanceStore& store, std::chrono::milliseconds interval,
                         std::function<void(std::uint64_t)> on_swept, NowMs now)
    : store_(store),
      interval_(interval),
      on_swept_(std::move(on_swept)),
      now_(std::move(now)),
      thread_([this](std::stop_token stop) { run(std::move(stop)); }) {}

HoldSweeper::~HoldSweeper() {
  thread_.request_stop();
  wake_.notify_all();
}

void HoldSweeper::run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, stop, interval_, [] { return false; });  // a tick, or the stop
    }
    if (stop.stop_requested()) break;
    // A failed sweep (database away) is retried at the next tick; nothing is lost.
    auto swept = store_.sweep_expired(now_());
    if (swept && *swept > 0) {
      swept_ += *swept;
      if (on_swept_) on_swept_(*swept);
    }
  }
}

}  // namespace turnout::admit
