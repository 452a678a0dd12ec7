#pragma once
// The ledger: one durable record per chat call (SPEC section 6) and the statistics read
// back from it (SPEC section 5). Backends: SQLite (embedded default), PostgreSQL later.
#include "common/result.hpp"
#include "pricing/pricing.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace turnout::ledger {

struct CallRecord {
  std::string id;                // request id (x-request-id), primary key
  double timestamp = 0;          // unix seconds (fractional) when the request arrived
  std::string instance_id;       // the gateway instance that served it
  std::string client_key_id;     // which gateway key (an id, never the key); "" without auth
  std::string requested_model;   // as the client sent it ("" when absent)
  std::string model;             // routed model (configured name)
  std::string route;             // tier, explicit, context-fit, fallback:<from>
  std::uint64_t counted_prompt_tokens = 0;  // the gateway's own count
  pricing::Usage usage;          // reported by the upstream, or counted by the gateway
  bool usage_reported = false;   // true: from the upstream; false: counted by the gateway
  std::optional<pricing::Money> cost;           // nullopt: unpriced model
  std::optional<pricing::Money> baseline_cost;  // same usage on routing.baseline_model
  double latency_ms = 0;         // whole request, upstream included
  std::optional<double> ttft_ms; // streaming: time to first token
  int status = 200;              // HTTP status as the client saw it (499: client went away)
  std::string error_type;        // "" on success, e.g. upstream_error, client_closed
  int attempts = 0;              // upstream attempts, retries and fallbacks included
  bool stream = false;
};

struct StatsQuery {
  std::optional<double> since;  // inclusive, unix seconds
  std::optional<double> until;  // exclusive
  std::size_t recent = 10;
};

struct LatencySummary {
  double avg = 0, p50 = 0, p95 = 0, p99 = 0;
};

struct ModelStats {
  std::uint64_t calls = 0, errors = 0, prompt_tokens = 0, completion_tokens = 0;
  std::optional<pricing::Money> cost;  // nullopt when every call was unpriced? see render
  pricing::Money priced_cost;          // sum over priced calls
  std::uint64_t unpriced_calls = 0;
  LatencySummary latency_ms;
};

struct RecentCall {
  std::string id;
  double timestamp = 0;
  std::string model, route;
  std::optional<pricing::Money> cost;
  double latency_ms = 0;
  std::uint64_t prompt_tokens = 0, completion_tokens = 0;
  int status = 0;
};

struct StatsReport {
  std::uint64_t total_calls = 0;
  pricing::Money total_cost;       // priced calls only
  double avg_latency_ms = 0;
  std::map<std::string, std::uint64_t> model_distribution;
  std::vector<RecentCall> recent_calls;  // oldest first
  std::uint64_t errors = 0;
  std::map<std::string, ModelStats> models;
  std::map<std::string, std::uint64_t> routes;
  pricing::Money baseline_cost;
  std::uint64_t unpriced_calls = 0;
};

// The /stats JSON body (SPEC section 5); savings_usd = baseline_cost - total_cost.
std::string render_stats_json(const StatsReport& report);

struct LedgerHealth {
  bool healthy = true;
  std::string reason;  // when unhealthy
};

class Ledger {
 public:
  virtual ~Ledger() = default;

  // Queues `record` for the writer (group commit, off the request path). `on_durable`
  // runs once the record is committed (or failed); it is called on the writer thread,
  // so it must only hand off (post to an io_context), never block.
  using DurableCallback = std::function<void(Result<void>)>;
  virtual void append(CallRecord record, DurableCallback on_durable) = 0;

  // Aggregates over the ledger; thread-safe, blocking (call off the event loop).
  virtual Result<StatsReport> stats(const StatsQuery& query) = 0;

  virtual LedgerHealth health() const = 0;

  // Commits everything queued and stops the writer. Idempotent.
  virtual void close() = 0;
};

// Opens the backend named by a ledger URL (sqlite:PATH, sqlite::memory:), creating or
// migrating its schema.
Result<std::unique_ptr<Ledger>> open_ledger(const std::string& url);

}  // namespace turnout::ledger
