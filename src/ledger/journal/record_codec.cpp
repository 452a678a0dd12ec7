#include "ledger/journal/record_codec.hpp"

#include <bit>
#include <cstdint>
#include <cstring>

namespace turnout::ledger {
namespace {

// Bumped when a field is added or a layout changes; a journal is only ever read back by
// the build that wrote it or a later one, which keeps the older versions' readers.
constexpr std::uint8_t kVersion = 1;

// Presence bits of the optional fields, and the booleans.
enum Flags : std::uint16_t {
  kCounted = 1 << 0,
  kEstimated = 1 << 1,
  kPartial = 1 << 2,
  kUsageReported = 1 << 3,
  kCost = 1 << 4,
  kBaselineCost = 1 << 5,
  kTtft = 1 << 6,
  kStream = 1 << 7,
};

static_assert(std::endian::native == std::endian::little, "the journal stores integers little-endian as they are");

template <typename T>
void put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

void put_text(std::string& out, std::string_view text) {
  put<std::uint32_t>(out, static_cast<std::uint32_t>(text.size()));
  out.append(text);
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : rest_(bytes) {}
  template <typename T>
  bool get(T& value) {
    if (rest_.size() < sizeof(T)) return false;
    std::memcpy(&value, rest_.data(), sizeof(T));
    rest_.remove_prefix(sizeof(T));
    return true;
  }
  bool get_text(std::string& text) {
    std::uint32_t size = 0;
    if (!get(size) || rest_.size() < size) return false;
    text.assign(rest_.data(), size);
    rest_.remove_prefix(size);
    return true;
  }
  bool done() const { return rest_.empty(); }

 private:
  std::string_view rest_;
};

}  // namespace

// A field added to CallRecord and forgotten here would be dropped from every replayed
// record without a sound. When this fires: encode and decode the new field (a new codec
// version if old journals must still read), extend full_record() in journal_test.cpp, then
// update the size. (x86-64, libstdc++; other targets skip the check.)
#if defined(__x86_64__) && defined(__GLIBCXX__)
static_assert(sizeof(CallRecord) == 424, "CallRecord changed: update the journal codec (see above)");
#endif

void encode_record(const KeyedRecord& keyed, std::string& out) {
  const CallRecord& r = keyed.record;
  std::uint16_t flags = 0;
  if (r.counted_prompt_tokens) flags |= kCounted;
  if (r.count_estimated) flags |= kEstimated;
  if (r.count_partial) flags |= kPartial;
  if (r.usage_reported) flags |= kUsageReported;
  if (r.cost) flags |= kCost;
  if (r.baseline_cost) flags |= kBaselineCost;
  if (r.ttft_ms) flags |= kTtft;
  if (r.stream) flags |= kStream;
  put<std::uint8_t>(out, kVersion);
  put<std::uint16_t>(out, flags);
  put_text(out, keyed.key);
  put_text(out, r.id);
  put<double>(out, r.timestamp);
  put_text(out, r.instance_id);
  put_text(out, r.client_key_id);
  put_text(out, r.endpoint);
  put_text(out, r.requested_model);
  put_text(out, r.model);
  put_text(out, r.route);
  put<std::uint64_t>(out, r.counted_prompt_tokens.value_or(0));
  put<std::uint64_t>(out, r.usage.prompt_tokens);
  put<std::uint64_t>(out, r.usage.completion_tokens);
  put<std::uint64_t>(out, r.usage.cached_tokens);
  put<std::int64_t>(out, r.cost ? r.cost->pico : 0);
  put<std::int64_t>(out, r.baseline_cost ? r.baseline_cost->pico : 0);
  put<double>(out, r.latency_ms);
  put<double>(out, r.ttft_ms.value_or(0));
  put<std::int32_t>(out, r.status);
  put_text(out, r.error_type);
  put<std::int32_t>(out, r.attempts);
  put_text(out, r.hold_id);
}

std::optional<KeyedRecord> decode_record(std::string_view payload) {
  Reader in(payload);
  std::uint8_t version = 0;
  std::uint16_t flags = 0;
  if (!in.get(version) || version != kVersion || !in.get(flags)) return std::nullopt;
  KeyedRecord keyed;
  CallRecord& r = keyed.record;
  std::uint64_t counted = 0;
  std::int64_t cost = 0, baseline = 0;
  double ttft = 0;
  std::int32_t status = 0, attempts = 0;
  const bool read = in.get_text(keyed.key) && in.get_text(r.id) && in.get(r.timestamp) && in.get_text(r.instance_id) &&
                    in.get_text(r.client_key_id) && in.get_text(r.endpoint) && in.get_text(r.requested_model) &&
                    in.get_text(r.model) && in.get_text(r.route) && in.get(counted) && in.get(r.usage.prompt_tokens) &&
                    in.get(r.usage.completion_tokens) && in.get(r.usage.cached_tokens) && in.get(cost) &&
                    in.get(baseline) && in.get(r.latency_ms) && in.get(ttft) && in.get(status) &&
                    in.get_text(r.error_type) && in.get(attempts) && in.get_text(r.hold_id);
  if (!read || !in.done()) return std::nullopt;
  if (flags & kCounted) r.counted_prompt_tokens = counted;
  r.count_estimated = (flags & kEstimated) != 0;
  r.count_partial = (flags & kPartial) != 0;
  r.usage_reported = (flags & kUsageReported) != 0;
  if (flags & kCost) r.cost = pricing::Money{cost};
  if (flags & kBaselineCost) r.baseline_cost = pricing::Money{baseline};
  if (flags & kTtft) r.ttft_ms = ttft;
  r.stream = (flags & kStream) != 0;
  r.status = status;
  r.attempts = attempts;
  return keyed;
}

}  // namespace turnout::ledger
