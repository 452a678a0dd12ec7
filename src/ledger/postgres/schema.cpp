#include "ledger/postgres/schema.hpp"

#include "ledger/postgres/admit_function.hpp"
#include "ledger/postgres/rollups.hpp"

#include <fmt/format.h>

#include <array>

namespace turnout::ledger::pg {
namespace {

// Any fixed 64-bit number serves as the lock's name as long as every turnout uses the same
// one; this is "turnout" in ASCII.
constexpr std::string_view kLockSql = "SELECT pg_advisory_xact_lock(32780231637955956)";

constexpr std::string_view kVersionTableSql = R"sql(
  CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
  )
)sql";

}  // namespace

std::span<const Migration> ledger_migrations() {
  // As in SQLite: `seq` orders records as written (per writer; ties in timestamp go to
  // the later one), `record_key` is unique per append and makes a re-sent batch
  // idempotent, `id` is the client's request id (indexed, not unique). Money is integer
  // pico-dollars, NULL when the price is unknown; sums are taken as NUMERIC, so exact.
  static constexpr std::array migrations{
      Migration{"calls table", R"sql(
        CREATE TABLE calls (
          seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          record_key TEXT NOT NULL UNIQUE,
          id TEXT NOT NULL,
          timestamp DOUBLE PRECISION NOT NULL,
          instance_id TEXT NOT NULL,
          client_key_id TEXT NOT NULL,
          requested_model TEXT NOT NULL,
          model TEXT NOT NULL,
          route TEXT NOT NULL,
          counted_prompt_tokens BIGINT NOT NULL,
          prompt_tokens BIGINT NOT NULL,
          completion_tokens BIGINT NOT NULL,
          cached_tokens BIGINT NOT NULL,
          usage_reported BOOLEAN NOT NULL,
          cost_pico BIGINT,
          baseline_cost_pico BIGINT,
          latency_ms DOUBLE PRECISION NOT NULL,
          ttft_ms DOUBLE PRECISION,
          status INTEGER NOT NULL,
          error_type TEXT NOT NULL,
          attempts INTEGER NOT NULL,
          stream BOOLEAN NOT NULL
        );
        CREATE INDEX calls_id ON calls (id);
        CREATE INDEX calls_timestamp ON calls (timestamp);
        -- Percentiles read one latency by rank per model (ORDER BY latency_ms OFFSET k).
        CREATE INDEX calls_model_latency ON calls (model, latency_ms, timestamp);
      )sql"},
      // Roll-ups (rollup.hpp), as in SQLite: /stats reads these instead of raw rows, and
      // the percentile index is no longer needed. Rows are keyed by instance, so instances
      // sharing the database never update the same row.
      Migration{"roll-ups", R"sql(
        CREATE TABLE rollups (
          width BIGINT NOT NULL,
          bucket BIGINT NOT NULL,
          instance_id TEXT NOT NULL,
          model TEXT NOT NULL,
          route TEXT NOT NULL,
          calls BIGINT NOT NULL,
          errors BIGINT NOT NULL,
          prompt_tokens BIGINT NOT NULL,
          completion_tokens BIGINT NOT NULL,
          priced_calls BIGINT NOT NULL,
          priced_cost_pico BIGINT NOT NULL,
          latency_sum DOUBLE PRECISION NOT NULL,
          baseline_cost_pico BIGINT NOT NULL,
          savings_pico BIGINT NOT NULL,
          PRIMARY KEY (width, bucket, instance_id, model, route)
        );
        CREATE TABLE key_rollups (
          width BIGINT NOT NULL,
          bucket BIGINT NOT NULL,
          instance_id TEXT NOT NULL,
          client_key_id TEXT NOT NULL,
          calls BIGINT NOT NULL,
          prompt_tokens BIGINT NOT NULL,
          completion_tokens BIGINT NOT NULL,
          priced_calls BIGINT NOT NULL,
          priced_cost_pico BIGINT NOT NULL,
          PRIMARY KEY (width, bucket, instance_id, client_key_id)
        );
        CREATE TABLE latency_rollups (
          width BIGINT NOT NULL,
          bucket BIGINT NOT NULL,
          instance_id TEXT NOT NULL,
          model TEXT NOT NULL,
          latency_bucket INTEGER NOT NULL,
          count BIGINT NOT NULL,
          min_ms DOUBLE PRECISION NOT NULL,
          max_ms DOUBLE PRECISION NOT NULL,
          PRIMARY KEY (width, bucket, instance_id, model, latency_bucket)
        );
        DROP INDEX calls_model_latency;
      )sql"},  // the rows are built from the records by "series roll-ups", whose writer knows every table
      // Named values of the installation, such as its secret (installation_secret.hpp).
      Migration{"metadata table", R"sql(
        CREATE TABLE metadata (
          name TEXT PRIMARY KEY,
          value TEXT NOT NULL
        );
      )sql"},
      // As in SQLite: one latency histogram row per (width, bucket, instance, model) with
      // all its cells, and the six-hour width, built from the stored roll-ups (cells from
      // latency_rollups, six-hour rows from hour rows); then, for a ledger from before
      // roll-ups, everything from the records. A double is written in its shortest exact
      // form (extra_float_digits > 0), so it reads back the same.
      Migration{"series roll-ups", R"sql(
        SET LOCAL extra_float_digits = 3;
        CREATE TABLE latency_histograms (
          width BIGINT NOT NULL,
          bucket BIGINT NOT NULL,
          instance_id TEXT NOT NULL,
          model TEXT NOT NULL,
          cells TEXT NOT NULL,
          PRIMARY KEY (width, bucket, instance_id, model)
        );
        INSERT INTO latency_rollups
          SELECT 21600, bucket / 21600 * 21600, instance_id, model, latency_bucket, SUM(count), MIN(min_ms), MAX(max_ms)
          FROM latency_rollups WHERE width = 3600
          GROUP BY bucket / 21600, instance_id, model, latency_bucket;
        INSERT INTO latency_histograms
          SELECT width, bucket, instance_id, model,
                 string_agg(latency_bucket || ',' || count || ',' || min_ms || ',' || max_ms, ' ' ORDER BY latency_bucket)
          FROM latency_rollups GROUP BY width, bucket, instance_id, model;
        DROP TABLE latency_rollups;
        INSERT INTO rollups
          SELECT 21600, bucket / 21600 * 21600, instance_id, model, route, SUM(calls), SUM(errors), SUM(prompt_tokens),
                 SUM(completion_tokens), SUM(priced_calls), SUM(priced_cost_pico), SUM(latency_sum),
                 SUM(baseline_cost_pico), SUM(savings_pico)
          FROM rollups WHERE width = 3600
          GROUP BY bucket / 21600, instance_id, model, route;
        INSERT INTO key_rollups
          SELECT 21600, bucket / 21600 * 21600, instance_id, client_key_id, SUM(calls), SUM(prompt_tokens),
                 SUM(completion_tokens), SUM(priced_calls), SUM(priced_cost_pico)
          FROM key_rollups WHERE width = 3600
          GROUP BY bucket / 21600, instance_id, client_key_id;
      )sql", &backfill_missing_rollups},
      // Governance (docs/ARCHITECTURE.md "Governance"): virtual keys (public id + SHA-256
      // of the secret, never the secret), teams, one budget row per scope ("key:<id>",
      // "team:<id>") and period start (a new period is a new row: no reset job), holds
      // as durable rows that the ledger writer settles with the call's record, and the
      // audit trail of every admin write. Money in pico-dollars, times in unix ms.
      Migration{"governance tables", R"sql(
        CREATE TABLE gov_teams (
          id TEXT PRIMARY KEY,
          name TEXT NOT NULL,
          models TEXT,
          expires_at_ms BIGINT,
          budget_pico BIGINT,
          budget_period TEXT NOT NULL,
          timezone TEXT NOT NULL,
          rpm BIGINT,
          tpm BIGINT,
          max_parallel BIGINT,
          created_at_ms BIGINT NOT NULL,
          updated_at_ms BIGINT NOT NULL
        );
        CREATE TABLE gov_keys (
          id TEXT PRIMARY KEY,
          secret_sha256 TEXT NOT NULL,
          team_id TEXT REFERENCES gov_teams (id),
          name TEXT NOT NULL,
          models TEXT,
          expires_at_ms BIGINT,
          revoked_at_ms BIGINT,
          budget_pico BIGINT,
          budget_period TEXT NOT NULL,
          timezone TEXT NOT NULL,
          rpm BIGINT,
          tpm BIGINT,
          max_parallel BIGINT,
          created_at_ms BIGINT NOT NULL,
          updated_at_ms BIGINT NOT NULL
        );
        CREATE TABLE gov_budgets (
          scope TEXT NOT NULL,
          period_start_ms BIGINT NOT NULL,
          spent_pico BIGINT NOT NULL DEFAULT 0,
          held_pico BIGINT NOT NULL DEFAULT 0,
          expired_pico BIGINT NOT NULL DEFAULT 0,
          PRIMARY KEY (scope, period_start_ms)
        );
        CREATE TABLE gov_holds (
          id TEXT PRIMARY KEY,
          key_scope TEXT NOT NULL,
          key_period_ms BIGINT NOT NULL,
          team_scope TEXT,
          team_period_ms BIGINT,
          amount_pico BIGINT NOT NULL,
          created_at_ms BIGINT NOT NULL,
          expires_at_ms BIGINT NOT NULL
        );
        CREATE INDEX gov_holds_key_expiry ON gov_holds (key_scope, expires_at_ms);
        CREATE INDEX gov_holds_team_expiry ON gov_holds (team_scope, expires_at_ms);
        CREATE TABLE gov_audit (
          seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          at_ms BIGINT NOT NULL,
          actor TEXT NOT NULL,
          action TEXT NOT NULL,
          target TEXT NOT NULL,
          before_json TEXT,
          after_json TEXT
        );
      )sql"},
      // Which endpoint a call came in on (chat, embeddings, responses; every earlier call
      // was a chat call) and whether its count is an estimate or partial (Responses).
      // IF NOT EXISTS: migration 3's backfill may have added them already.
      Migration{"call endpoint and count flags", kAddCallColumnsSql},
      // Requests per scope and minute (rpm): one row per fixed one-minute window, counted
      // in the hold's transaction so replicas share the count.
      Migration{"governance request counts", R"sql(
        CREATE TABLE gov_rates (
          scope TEXT NOT NULL,
          window_start_ms BIGINT NOT NULL,
          requests BIGINT NOT NULL DEFAULT 0,
          PRIMARY KEY (scope, window_start_ms)
        );
      )sql"},
      // Tokens per minute and concurrent requests: a window counts the tokens its calls
      // reserved (prompt + maximum output, settled to the actual usage), and a hold row
      // records what it reserved and in which window, so settling can give back the rest.
      // Every call on a key with tpm or max_parallel holds a row: the live rows are its slots.
      // Budget rows count holds charged by expiry and calls that cost more than their hold
      // (/metrics, /stats).
      Migration{"governance token counts, slots and hold outcomes", R"sql(
        ALTER TABLE gov_budgets ADD COLUMN expired_holds BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE gov_budgets ADD COLUMN overruns BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE gov_budgets ADD COLUMN overrun_pico BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE gov_rates ADD COLUMN tokens BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE gov_holds ADD COLUMN tokens BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE gov_holds ADD COLUMN rate_window_ms BIGINT;
      )sql"},
      // /stats's breakdown by endpoint (chat, embeddings, responses), built as in SQLite:
      // every call of the totals roll-ups taken as chat (raw records may have been pruned),
      // then the non-chat calls still in `calls` moved to their endpoint; second rows only
      // for records within a day, as the writer does.
      Migration{"endpoint roll-ups", R"sql(
        CREATE TABLE endpoint_rollups (
          width BIGINT NOT NULL,
          bucket BIGINT NOT NULL,
          instance_id TEXT NOT NULL,
          endpoint TEXT NOT NULL,
          calls BIGINT NOT NULL,
          errors BIGINT NOT NULL,
          prompt_tokens BIGINT NOT NULL,
          completion_tokens BIGINT NOT NULL,
          priced_calls BIGINT NOT NULL,
          priced_cost_pico BIGINT NOT NULL,
          latency_sum DOUBLE PRECISION NOT NULL,
          PRIMARY KEY (width, bucket, instance_id, endpoint)
        );
        INSERT INTO endpoint_rollups (width, bucket, instance_id, endpoint, calls, errors, prompt_tokens,
                                      completion_tokens, priced_calls, priced_cost_pico, latency_sum)
          SELECT width, bucket, instance_id, 'chat', SUM(calls), SUM(errors), SUM(prompt_tokens),
                 SUM(completion_tokens), SUM(priced_calls), SUM(priced_cost_pico), SUM(latency_sum)
          FROM rollups GROUP BY width, bucket, instance_id;
        WITH widths (w) AS (VALUES (604800::BIGINT), (86400), (21600), (3600), (60), (1))
        INSERT INTO endpoint_rollups (width, bucket, instance_id, endpoint, calls, errors, prompt_tokens,
                                      completion_tokens, priced_calls, priced_cost_pico, latency_sum)
          SELECT w, floor(timestamp)::BIGINT / w * w AS start, instance_id, endpoint, COUNT(*),
                 COUNT(*) FILTER (WHERE error_type <> '' OR status >= 400), COALESCE(SUM(prompt_tokens), 0),
                 COALESCE(SUM(completion_tokens), 0), COUNT(cost_pico), COALESCE(SUM(cost_pico), 0),
                 COALESCE(SUM(latency_ms), 0)
          FROM calls JOIN widths ON w > 1 OR timestamp >= extract(epoch FROM now()) - 86400
          WHERE endpoint <> 'chat'
          GROUP BY w, start, instance_id, endpoint;
        UPDATE endpoint_rollups SET
            calls = endpoint_rollups.calls - moved.calls,
            errors = endpoint_rollups.errors - moved.errors,
            prompt_tokens = endpoint_rollups.prompt_tokens - moved.prompt_tokens,
            completion_tokens = endpoint_rollups.completion_tokens - moved.completion_tokens,
            priced_calls = endpoint_rollups.priced_calls - moved.priced_calls,
            priced_cost_pico = endpoint_rollups.priced_cost_pico - moved.priced_cost_pico,
            latency_sum = endpoint_rollups.latency_sum - moved.latency_sum
          FROM (SELECT width, bucket, instance_id, SUM(calls) AS calls, SUM(errors) AS errors,
                       SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,
                       SUM(priced_calls) AS priced_calls, SUM(priced_cost_pico) AS priced_cost_pico,
                       SUM(latency_sum) AS latency_sum
                FROM endpoint_rollups WHERE endpoint <> 'chat' GROUP BY width, bucket, instance_id) AS moved
          WHERE endpoint_rollups.endpoint = 'chat' AND endpoint_rollups.width = moved.width
            AND endpoint_rollups.bucket = moved.bucket AND endpoint_rollups.instance_id = moved.instance_id;
        DELETE FROM endpoint_rollups WHERE calls <= 0;
      )sql"},
      // The served model's own count is taken only when something needs it (issue 16).
      Migration{"uncounted served prompts", R"sql(
        ALTER TABLE calls ALTER COLUMN counted_prompt_tokens DROP NOT NULL;
      )sql"},
      // A governance admission in one statement, so one round trip (admit_function.hpp);
      // CREATE OR REPLACE, so a later version of the function is a later migration.
      Migration{"governance admission function", kAdmitFunctionSql},
      // Lease mode (governance.mode: lease): a replica reserves a slice of a key's (and its
      // team's) budget, counted in the budget rows' held_pico like a hold, and admits calls
      // against it locally. `reserved_pico` is what the lease still holds: the ledger writer
      // moves each call's actual cost from it into spent, the replica gives back the unused
      // part, and an expired lease (a replica gone) is charged what remains in full.
      // `returned_pico` is the total the replica has given back: a return re-sent after a
      // commit whose answer was lost carries the same total and frees nothing twice.
      Migration{"governance leases", R"sql(
        CREATE TABLE gov_leases (
          id TEXT PRIMARY KEY,
          key_scope TEXT NOT NULL,
          key_period_ms BIGINT NOT NULL,
          team_scope TEXT,
          team_period_ms BIGINT,
          reserved_pico BIGINT NOT NULL,
          created_at_ms BIGINT NOT NULL,
          expires_at_ms BIGINT NOT NULL,
          returned_pico BIGINT NOT NULL DEFAULT 0
        );
        CREATE INDEX gov_leases_expiry ON gov_leases (expires_at_ms);
      )sql"},
  };
  return migrations;
}

turnout::Result<void> migrate(Connection& connection, std::span<const Migration> migrations) {
  auto transaction = Transaction::begin(connection);
  if (!transaction) {
    return transaction.error();
  }
  for (std::string_view setup : {kLockSql, kVersionTableSql}) {
    if (auto done = connection.query(std::string(setup)); !done) {
      return done.error();
    }
  }
  auto current = connection.query("SELECT COALESCE(MAX(version), 0) FROM schema_version");
  if (!current) {
    return current.error();
  }
  auto version = current->integer(0, 0);
  if (!version) {
    return version.error();
  }
  const auto newest = static_cast<std::int64_t>(migrations.size());
  if (*version > newest) {
    return make_error(fmt::format(
        "ledger schema version {} is newer than this turnout supports ({}); upgrade turnout", *version, newest));
  }
  for (auto step = static_cast<std::size_t>(*version); step < migrations.size(); ++step) {
    auto applied = connection.exec(migrations[step].sql);
    if (applied && migrations[step].then != nullptr) {
      applied = migrations[step].then(connection);
    }
    if (!applied) {
      return make_error(fmt::format("ledger migration {} ({}) failed: {}", step + 1, migrations[step].description,
                                    applied.error().message));
    }
    const std::array<Param, 2> row{std::to_string(step + 1), std::string(migrations[step].description)};
    if (auto recorded = connection.query("INSERT INTO schema_version (version, description) VALUES ($1, $2)", row);
        !recorded) {
      return recorded.error();
    }
  }
  return transaction->commit();
}

}  // namespace turnout::ledger::pg
