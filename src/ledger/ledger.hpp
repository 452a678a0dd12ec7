#pragma once
// The ledger: one durable record per forwarded call (chat, embeddings, responses;
// docs/REFERENCE.md §6) and the statistics read back from it (docs/REFERENCE.md §5).
// Backends: SQLite (embedded default) and PostgreSQL (shared
// by several gateway instances).
#include "common/result.hpp"
#include "pricing/pricing.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::ledger {

// The endpoint a call came in on (CallRecord::endpoint; /stats breaks spend down by it).
inline constexpr std::string_view kChatEndpoint = "chat";
inline constexpr std::string_view kEmbeddingsEndpoint = "embeddings";
inline constexpr std::string_view kResponsesEndpoint = "responses";

class Journal;  // journal/journal.hpp

struct CallRecord {
  std::string id;                // request id (x-request-id); not unique: a client that
                                 // reuses an id still gets every call recorded
  double timestamp = 0;          // unix seconds (fractional) when the request arrived
  std::string instance_id;       // the gateway instance that served it
  std::string client_key_id;     // which gateway key (an id, never the key); "" without auth
  std::string endpoint{kChatEndpoint};  // chat, embeddings or responses
  std::string requested_model;   // as the client sent it ("" when absent)
  std::string model;             // routed model (configured name)
  std::string route;             // tier, explicit, context-fit, fallback:<from>
  // The gateway's own count in the served model's encoding; nullopt when nothing needed
  // it (docs/REFERENCE.md §4.5: a context fit the byte bound proved, usage reported).
  std::optional<std::uint64_t> counted_prompt_tokens;
  // Responses: the count is an estimate (input kinds with no published formula) or
  // partial (earlier turns held by the provider: previous_response_id / conversation).
  bool count_estimated = false;
  bool count_partial = false;
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
  // The governance hold taken for this call ("" for none): the writer's transaction that
  // stores this record also deletes the hold and moves the cost from held to spent
  // (hold_settlement.hpp), so spent equals the ledger's costs by construction.
  std::string hold_id;
};

// A record with the ledger's own unique key. The key is assigned once per record (by the
// writer, or by the loop's hand-off journal when the record was journaled), so
// writing the same batch twice (a retry after a commit whose outcome was unknown) stores
// each call once, while two calls that share a client request id are both kept.
struct KeyedRecord {
  std::string key;
  CallRecord record;
};

struct StatsQuery {
  std::optional<double> since;  // inclusive, unix seconds
  std::optional<double> until;  // exclusive
  std::size_t recent = 10;
};

// Percentiles use the nearest-rank definition (for n latencies sorted ascending, pXX is
// the value at 1-based rank ceil(XX * n / 100)), read from latency histograms: the answer
// lies within the histogram bucket (4.4% wide) that holds that rank, between the smallest
// and largest latency observed in it (see latency_histogram.hpp).
struct LatencySummary {
  double avg = 0, p50 = 0, p95 = 0, p99 = 0;
};

struct ModelStats {
  std::uint64_t calls = 0, errors = 0, prompt_tokens = 0, completion_tokens = 0;
  std::optional<pricing::Money> cost;  // priced_cost; nullopt when every call was unpriced
  pricing::Money priced_cost;          // sum over priced calls
  std::uint64_t unpriced_calls = 0;
  LatencySummary latency_ms;
};

// Per client key (the gateway key's id, never the key itself; "" when the gateway has no keys).
struct KeyStats {
  std::uint64_t calls = 0, prompt_tokens = 0, completion_tokens = 0;
  std::optional<pricing::Money> cost;  // priced_cost; nullopt when every call was unpriced
  pricing::Money priced_cost;
  std::uint64_t unpriced_calls = 0;
};

// Per endpoint the calls came in on (chat, embeddings, responses).
struct EndpointStats {
  std::uint64_t calls = 0, errors = 0, prompt_tokens = 0, completion_tokens = 0;
  std::optional<pricing::Money> cost;  // priced_cost; nullopt when every call was unpriced
  pricing::Money priced_cost;
  std::uint64_t unpriced_calls = 0;
  double avg_latency_ms = 0;
};

struct RecentCall {
  std::string id;
  double timestamp = 0;
  std::string model, route;
  std::optional<pricing::Money> cost;
  double latency_ms = 0;
  std::uint64_t prompt_tokens = 0, completion_tokens = 0;
  int status = 0;
  std::optional<std::uint64_t> counted_prompt_tokens;  // the gateway's own count, when taken
  int attempts = 0;                         // upstream attempts, retries and fallbacks included
  std::string error_type;                   // "" on success
};

struct StatsReport {
  std::uint64_t total_calls = 0;   // every record in the window, failed ones too
  pricing::Money total_cost;       // priced calls only
  double avg_latency_ms = 0;       // over every call (0 when there is none)
  LatencySummary latency_ms;       // over every call, from every model's histogram
  std::map<std::string, std::uint64_t> model_distribution;
  std::vector<RecentCall> recent_calls;  // oldest first
  std::uint64_t errors = 0;
  std::map<std::string, ModelStats> models;
  std::map<std::string, std::uint64_t> routes;
  std::map<std::string, KeyStats> keys;  // by client key id
  std::map<std::string, EndpointStats> endpoints;  // /stats only; a /stats/series bucket leaves it empty
  // Sum of baseline costs over the calls that have one (a call without a baseline price
  // contributes nothing).
  pricing::Money baseline_cost;
  // Sum of (baseline cost - cost) over the calls that have both. Calls missing either
  // price are left out instead of counting as $0, so an unpriced model never shows up
  // as a saving. Equals baseline_cost - total_cost when every call is priced.
  pricing::Money savings;
  std::uint64_t unpriced_calls = 0;  // records whose cost is unknown (cost_usd null)
  // Why the roll-ups read may miss calls already acknowledged (a fold that failed or timed
  // out, calls spooled or waiting for the database); "" when they count every one. Set
  // by the reader from the FoldOutcome it waited for, not by the ledger's read.
  std::string rollups_stale;
};

// A time series over the roll-ups (GET /stats/series): buckets [since + i*step,
// since + (i+1)*step) for since <= start < until. since, until and step are whole seconds,
// step a multiple of a minute and since, until multiples of step, so every bucket is a
// sum of whole roll-up buckets and no raw record is read (series_assembly.hpp).
struct SeriesQuery {
  std::int64_t since = 0;
  std::int64_t until = 0;
  std::int64_t step = 0;
};

// One StatsReport per bucket (recent_calls empty), computed exactly as /stats computes a
// window, so a bucket's figures equal /stats over the same window.
struct SeriesReport {
  SeriesQuery query;
  std::vector<StatsReport> buckets;
  std::string rollups_stale;  // as StatsReport::rollups_stale
};

// The /stats JSON body (docs/REFERENCE.md §5): costs as exact decimal numbers, a model's
// cost_usd null when none of its calls was priced, latencies rounded to 3 decimals.
std::string render_stats_json(const StatsReport& report);

// The /stats/series JSON body: each bucket with /stats's figures (without recent_calls).
std::string render_series_json(const SeriesReport& report);

struct LedgerHealth {
  bool healthy = true;  // records appended now will be durable (database or spool)
  std::string reason;   // when unhealthy
  // Healthy, but the database is not taking writes: why, and what the spool holds.
  std::string degraded;
  std::uint64_t spooled = 0;  // records in the spool, waiting for the database
  // The journal hand-off: event loops whose calls wait for the commit because their
  // journal is off (none could be taken, a failed write, stuck), and journal writes that
  // failed since the open (their turns' calls were answered after the commit).
  std::size_t journals_off = 0;
  std::uint64_t journal_write_failures = 0;
};

// The answer to Ledger::request_fold: whether the roll-ups now count every record that
// was acknowledged before the request, and if not, why (the reader reports it).
struct FoldOutcome {
  bool complete = true;
  std::string problem;  // when !complete
};

class Ledger {
 public:
  virtual ~Ledger() = default;

  // Queues `record` for the writer (group commit, off the request path). `on_durable`
  // runs once the record is durable — committed to the database, or, when the database
  // did not take it, to the spool (LedgerOptions::spool_path) — with success, or with an
  // error when it is in neither (it is then only in memory, kept for retry). It is called
  // on the writer thread, so it must only hand off (post to an io_context), never block.
  using DurableCallback = std::function<void(Result<void>)>;
  virtual void append(CallRecord record, DurableCallback on_durable) = 0;
  // The same for several records with one callback: one hand-off to the writer (one
  // wake-up) for the lot, and one report back. The records are written in the same
  // transaction (never split across two), so the one outcome is true of each of them.
  virtual void append_batch(std::vector<CallRecord> records, DurableCallback on_durable) = 0;

  // The journal hand-off (journal/journal.hpp): a journal file of the caller's own (one
  // event loop's), or null when this ledger keeps none (PostgreSQL, sqlite::memory:,
  // `ledger.journal: false`, no journal file could be taken). Thread-safe.
  virtual std::shared_ptr<Journal> open_journal() { return nullptr; }
  // Lines for the start-up log about what the open did (journals a stopped process left,
  // replayed or not), counts and paths only, never a record; none by default.
  virtual std::vector<std::string> open_notes() const { return {}; }
  // As append_batch, for records `journal` keyed (Journal::stamp): the writer stores them
  // under those keys, and once every one of them is durable it tells the journal that its
  // sequence numbers up to `last_seq` are, so the journal may reuse their space.
  // `on_durable` may be empty (records the journal holds, whose calls were answered).
  virtual void append_keyed(std::vector<KeyedRecord> records, std::shared_ptr<Journal> journal,
                            std::uint64_t last_seq, DurableCallback on_durable) {
    (void)journal;
    (void)last_seq;
    std::vector<CallRecord> plain;
    plain.reserve(records.size());
    for (KeyedRecord& keyed : records) plain.push_back(std::move(keyed.record));
    append_batch(std::move(plain), std::move(on_durable));
  }

  // Asks the writer to bring the roll-ups up to every record acknowledged so far (a
  // backend that folds them after the commit, SQLite). `on_folded` runs once, on the
  // writer thread after its fold (so it must only hand off, like a DurableCallback), or
  // at once on the caller's thread when there is nothing to wait for or the writer is
  // known to be in trouble (then with the reason). Never blocks: a reader bounds its own
  // wait, so a writer stuck on a locked database holds no reader's thread.
  using FoldCallback = std::function<void(FoldOutcome)>;
  virtual void request_fold(FoldCallback on_folded) { on_folded(FoldOutcome{}); }

  // Aggregates over the ledger as stored now (request_fold first for every acknowledged
  // call); thread-safe, blocking (call off the event loop).
  virtual Result<StatsReport> stats(const StatsQuery& query) = 0;

  // Per-bucket figures over the roll-ups only; thread-safe, blocking (call off the event loop).
  virtual Result<SeriesReport> series(const SeriesQuery& query) = 0;

  virtual LedgerHealth health() const = 0;

  // The installation secret (installation_secret.hpp): the same for every instance and
  // every start on this ledger database.
  virtual const std::string& installation_secret() const = 0;

  // Commits everything queued and stops the writer. Idempotent. A record appended after
  // close() is not written: its callback gets an error at once.
  virtual void close() = 0;
};

struct LedgerOptions {
  // A batch the database does not take goes to this local SQLite file (spool/spool.hpp),
  // fsync'd, before its callers hear "durable"; later batches follow it there until the
  // database takes writes again and the spool has been drained into it (retried every
  // retry_interval; a spool left by a crash is drained at open). "" : no spool.
  std::string spool_path;
  // At most this many records in the spool; a batch that would pass it is not spooled
  // (its callers get an error) and health() is unhealthy while the spool is full.
  std::uint64_t spool_max_records = 1'000'000;
  // Records neither the database nor the spool took are kept in memory (up to
  // max_backlog, the oldest dropped beyond that; their callers got an error) and retried
  // this often, so health() recovers by itself.
  std::chrono::milliseconds retry_interval{1000};
  std::size_t max_backlog = 100'000;
  std::size_t max_batch = 4096;  // records per transaction (group commit)
  // Raw records older than this are deleted (the roll-ups behind /stats are kept);
  // zero keeps every record.
  std::chrono::seconds retention{0};
  // Whether the writer deletes records past `retention`. false (`turnout stats`, a read):
  // retention then only keeps a journal replay from bringing back rows a gateway deletes.
  bool delete_expired = true;
  // How often the writer looks for records past retention.
  std::chrono::seconds retention_check_interval{600};
  // A backend that folds the roll-ups after the calls commit (SQLite) is asked to fold
  // this long after the first call not folded yet, or once this many are waiting,
  // whichever comes first; and always before a read of the roll-ups and at close.
  std::chrono::milliseconds rollup_fold_interval{100};
  std::size_t rollup_fold_calls = 4096;
  // The journal hand-off (journal/journal.hpp) for a file-backed SQLite ledger: calls
  // without a governance hold are answered once their record is in the loop's journal
  // file, before the commit. Journals a killed process left are replayed at open either way.
  bool journal = true;
  // Bytes per journal file (two segments), preallocated once.
  std::uint64_t journal_bytes = 4u << 20;
};

// Opens the backend named by a ledger URL (sqlite:PATH, sqlite::memory:,
// postgresql://user:password@host:port/db), creating or migrating its schema, reads (or
// creates) the installation secret, and opens a spool left behind (options.spool_path)
// so the writer drains it first. Errors never echo credentials from the URL.
Result<std::unique_ptr<Ledger>> open_ledger(const std::string& url, const LedgerOptions& options = {});

// request_fold for a caller that may block (the CLI, tests): waits at most `limit`.
FoldOutcome wait_for_fold(Ledger& ledger, std::chrono::milliseconds limit);

}  // namespace turnout::ledger
