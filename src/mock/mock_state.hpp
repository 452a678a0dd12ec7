#pragma once
// State the mock's connections share: the active settings, call counters and the
// recording of requests received. Thread-safe; one instance per server.
#include "mock/mock_settings.hpp"

#include <boost/json/fwd.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace turnout::mock {

struct RecordedRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  double time = 0;  // unix seconds
};

// What to do with one chat call, decided when it arrives.
struct CallPlan {
  std::shared_ptr<const MockSettings> settings;  // as they were when the call arrived
  std::chrono::milliseconds latency{0};
  bool faulted = false;  // the settings' faults apply to this call
  std::uint64_t sequence = 0;  // numbers the answer's ids
};

// Bounds on the recording: oldest requests are dropped beyond either limit.
struct RecordingLimits {
  std::size_t max_requests = 1000;
  std::size_t max_bytes = 64u << 20;
};

class MockState {
 public:
  MockState(MockSettings startup, RecordingLimits limits);

  std::shared_ptr<const MockSettings> settings() const;
  // The settings given at start-up: the base for /_mock/config and what reset restores.
  const MockSettings& startup_settings() const { return startup_; }
  // Replaces the settings; fail_first counts again from zero.
  void replace_settings(MockSettings settings);
  // Start-up settings, empty recording, zero counters.
  void reset();

  bool recording_enabled() const { return limits_.max_requests > 0; }
  void record(RecordedRequest request);
  boost::json::object recordings_json() const;
  void clear_recordings();

  // Counts a valid chat call for `model` and decides its latency and faults;
  // `uniform01` is a random draw in [0, 1), `jitter01` another, for the latency.
  CallPlan plan_chat_call(std::string_view model, bool stream, double uniform01, double jitter01);

  // Stream bookkeeping, visible in /_mock/stats (tests check that streams end).
  enum class StreamEnd { completed, client_gone, injected_fault };
  void stream_started();
  void stream_ended(StreamEnd how);
  void request_received() { requests_total_.fetch_add(1, std::memory_order_relaxed); }
  void chat_rejected() { chat_rejected_.fetch_add(1, std::memory_order_relaxed); }

  boost::json::object stats_json() const;

 private:
  // The settings with their own count of in-scope calls, swapped as one unit so a new
  // configuration always starts counting from zero.
  struct ActiveSettings {
    explicit ActiveSettings(MockSettings s) : settings(std::make_shared<const MockSettings>(std::move(s))) {}
    std::shared_ptr<const MockSettings> settings;
    std::atomic<std::uint64_t> calls_in_scope{0};
  };
  std::shared_ptr<ActiveSettings> active() const;

  const MockSettings startup_;
  const RecordingLimits limits_;

  mutable std::mutex settings_mutex_;
  std::shared_ptr<ActiveSettings> active_;

  mutable std::mutex recording_mutex_;
  std::deque<RecordedRequest> recorded_;
  std::size_t recorded_bytes_ = 0;

  mutable std::mutex counters_mutex_;
  std::map<std::string, std::uint64_t, std::less<>> calls_by_model_;

  std::atomic<std::uint64_t> sequence_{0};
  std::atomic<std::uint64_t> requests_total_{0};
  std::atomic<std::uint64_t> chat_calls_{0};
  std::atomic<std::uint64_t> chat_streams_{0};
  std::atomic<std::uint64_t> chat_rejected_{0};
  std::atomic<std::uint64_t> faults_injected_{0};
  std::atomic<std::uint64_t> streams_active_{0};
  std::atomic<std::uint64_t> streams_completed_{0};
  std::atomic<std::uint64_t> streams_client_gone_{0};
  std::atomic<std::uint64_t> streams_broken_{0};
};

}  // namespace turnout::mock
