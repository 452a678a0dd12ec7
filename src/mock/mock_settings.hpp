#pragma once
// What the mock upstream does with a chat call: the shape of its answers and the faults
// it injects. Set from CLI flags at start-up and replaced at run time by
// POST /_mock/config, so one mock process can serve a whole test file.
#include "common/result.hpp"

#include <boost/json/fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::mock {

struct ReplySettings {
  std::uint32_t chunks = 8;            // content (or tool-argument) chunks per streamed choice
  std::uint32_t chunk_delay_ms = 0;    // pause before each of those chunks
  std::uint32_t completion_words = 0;  // pad the answer to this many words; 0 = no padding
  std::uint64_t cached_tokens = 0;     // reported in usage.prompt_tokens_details (capped)
};

// Faults apply to the chat calls in scope (`fault_models`, empty = every model). Latency
// hits every call in scope; the other faults hit the calls the selectors pick:
// the first `fail_first` calls since the settings were set, then a `fail_rate` share;
// with neither selector, every call in scope.
struct FaultSettings {
  std::vector<std::string> fault_models;

  std::uint32_t latency_ms = 0;
  std::uint32_t latency_jitter_ms = 0;  // uniform extra delay in [0, jitter]

  std::optional<std::uint64_t> fail_first;
  std::optional<double> fail_rate;  // 0..1

  std::optional<unsigned> fail_status;  // answer with this status and an OpenAI error body
  std::string retry_after;              // Retry-After header on failures ("" = none)
  bool html_error = false;              // failure body is an HTML page (status 502 unless fail_status)
  bool hang = false;                    // accept the call and never answer
  bool malformed = false;               // 200 with a truncated body / an invalid stream event
  bool no_usage = false;                // streams never carry a usage chunk
  std::optional<std::uint32_t> reset_after_chunks;  // stream: K events, then a TCP reset
  std::optional<std::uint32_t> stall_after_chunks;  // stream: K events, then silence

  // True when the selected calls get a non-latency fault at all.
  bool any_fault() const;
  // True when `model` is in scope.
  bool applies_to(std::string_view model) const;
  // Whether the call with index `call_index` (0-based among calls in scope since the
  // settings were set) is picked; `uniform01` is a random draw in [0, 1).
  bool selects(std::uint64_t call_index, double uniform01) const;
};

struct MockSettings {
  ReplySettings reply;
  FaultSettings faults;
};

// Reads a POST /_mock/config body: every field is optional and absent fields keep their
// value in `base` (the start-up settings); null clears an optional field. Unknown keys
// and out-of-range values are errors naming the key.
Result<MockSettings> settings_from_json(const boost::json::value& body, const MockSettings& base);

// Range checks shared by the CLI and the control API.
Result<void> validate_settings(const MockSettings& settings);

boost::json::object settings_to_json(const MockSettings& settings);

}  // namespace turnout::mock
