#include "mock/mock_state.hpp"

#include <boost/json.hpp>

#include <cmath>

namespace turnout::mock {
namespace json = boost::json;

namespace {
std::size_t recorded_size(const RecordedRequest& r) {
  std::size_t size = r.method.size() + r.target.size() + r.body.size();
  for (const auto& [name, value] : r.headers) size += name.size() + value.size();
  return size;
}
}  // namespace

MockState::MockState(MockSettings startup, RecordingLimits limits)
    : startup_(std::move(startup)), limits_(limits), active_(std::make_shared<ActiveSettings>(startup_)) {}

std::shared_ptr<MockState::ActiveSettings> MockState::active() const {
  std::lock_guard lock(settings_mutex_);
  return active_;
}

std::shared_ptr<const MockSettings> MockState::settings() const { return active()->settings; }

void MockState::replace_settings(MockSettings settings) {
  auto fresh = std::make_shared<ActiveSettings>(std::move(settings));
  std::lock_guard lock(settings_mutex_);
  active_ = std::move(fresh);
}

void MockState::reset() {
  replace_settings(startup_);
  clear_recordings();
  {
    std::lock_guard lock(counters_mutex_);
    calls_by_model_.clear();
  }
  for (auto* counter : {&requests_total_, &chat_calls_, &chat_streams_, &chat_rejected_, &faults_injected_,
                        &streams_completed_, &streams_client_gone_, &streams_broken_})
    counter->store(0, std::memory_order_relaxed);
}

void MockState::record(RecordedRequest request) {
  if (!recording_enabled()) return;
  const std::size_t size = recorded_size(request);
  std::lock_guard lock(recording_mutex_);
  recorded_bytes_ += size;
  recorded_.push_back(std::move(request));
  while (recorded_.size() > 1 && (recorded_.size() > limits_.max_requests || recorded_bytes_ > limits_.max_bytes)) {
    recorded_bytes_ -= recorded_size(recorded_.front());
    recorded_.pop_front();
  }
}

json::object MockState::recordings_json() const {
  json::array requests;
  std::lock_guard lock(recording_mutex_);
  requests.reserve(recorded_.size());
  for (const auto& r : recorded_) {
    json::object headers;
    for (const auto& [name, value] : r.headers) {
      // A repeated header reads as one comma-joined value, as HTTP allows.
      auto [it, inserted] = headers.emplace(name, value);
      if (!inserted) {
        auto& joined = it->value().as_string();
        joined.append(", ");
        joined.append(value);
      }
    }
    requests.emplace_back(json::object{
        {"method", r.method},
        {"target", r.target},
        {"headers", std::move(headers)},
        {"body", r.body},
        {"time", r.time},
    });
  }
  return json::object{{"requests", std::move(requests)}};
}

void MockState::clear_recordings() {
  std::lock_guard lock(recording_mutex_);
  recorded_.clear();
  recorded_bytes_ = 0;
}

CallPlan MockState::plan_chat_call(std::string_view model, bool stream, double uniform01, double jitter01) {
  chat_calls_.fetch_add(1, std::memory_order_relaxed);
  if (stream) chat_streams_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(counters_mutex_);
    auto it = calls_by_model_.find(model);
    if (it == calls_by_model_.end()) it = calls_by_model_.emplace(std::string(model), 0).first;
    ++it->second;
  }

  const auto current = active();
  CallPlan plan;
  plan.settings = current->settings;
  plan.sequence = sequence_.fetch_add(1, std::memory_order_relaxed) + 1;
  const FaultSettings& faults = current->settings->faults;
  if (!faults.applies_to(model)) return plan;

  const auto jitter = static_cast<std::uint32_t>(std::floor(jitter01 * (faults.latency_jitter_ms + 1.0)));
  plan.latency = std::chrono::milliseconds(faults.latency_ms + std::min(jitter, faults.latency_jitter_ms));
  const std::uint64_t index = current->calls_in_scope.fetch_add(1, std::memory_order_relaxed);
  plan.faulted = faults.any_fault() && faults.selects(index, uniform01);
  if (plan.faulted) faults_injected_.fetch_add(1, std::memory_order_relaxed);
  return plan;
}

void MockState::stream_started() { streams_active_.fetch_add(1, std::memory_order_relaxed); }

void MockState::stream_ended(StreamEnd how) {
  streams_active_.fetch_sub(1, std::memory_order_relaxed);
  auto& counter = how == StreamEnd::completed     ? streams_completed_
                  : how == StreamEnd::client_gone ? streams_client_gone_
                                                  : streams_broken_;
  counter.fetch_add(1, std::memory_order_relaxed);
}

json::object MockState::stats_json() const {
  json::object by_model;
  {
    std::lock_guard lock(counters_mutex_);
    for (const auto& [model, calls] : calls_by_model_) by_model[model] = calls;
  }
  const auto load = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  return json::object{
      {"requests_total", load(requests_total_)},
      {"chat_calls", load(chat_calls_)},
      {"chat_streams", load(chat_streams_)},
      {"chat_rejected", load(chat_rejected_)},
      {"chat_calls_by_model", std::move(by_model)},
      {"faults_injected", load(faults_injected_)},
      {"streams_active", load(streams_active_)},
      {"streams_completed", load(streams_completed_)},
      {"streams_client_gone", load(streams_client_gone_)},
      {"streams_broken", load(streams_broken_)},
  };
}

}  // namespace turnout::mock
