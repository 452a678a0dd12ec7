#include "ledger/sqlite/schema.hpp"

#include "ledger/sqlite/rollups.hpp"

#include <fmt/format.h>

#include <array>
#include <string>
#include <string_view>
#include <utility>

namespace turnout::ledger::sqlite {

namespace {

// The watermark's DELETE trigger, created by migration "roll-up watermark" and re-created
// by ensure_watermark_trigger: one text, so the two cannot drift apart. (SQLite stores it
// without IF NOT EXISTS, as the migration first created it.)
constexpr std::string_view kWatermarkTriggerSql = R"sql(
        CREATE TRIGGER IF NOT EXISTS calls_watermark_row_deleted AFTER DELETE ON calls
        WHEN old.seq >= (SELECT folded_through_seq FROM rollup_watermark)
        BEGIN
          UPDATE rollup_watermark
          SET folded_through_seq = MIN(folded_through_seq, (SELECT COALESCE(MAX(seq), 0) FROM calls));
        END;
      )sql";

Result<void> create_watermark_trigger(Database& db) { return db.exec(kWatermarkTriggerSql); }

}  // namespace

std::span<const Migration> ledger_migrations() {
  // `seq` (the rowid) orders records as written; `record_key` is unique per append and
  // makes a re-sent batch idempotent; `id` is the client-visible request id, which a
  // client may reuse, so it is not unique (and, since "request ids not indexed", not
  // indexed). Money is integer pico-dollars, NULL when the price is unknown.
  static constexpr std::array migrations{
      Migration{"calls table", R"sql(
        CREATE TABLE calls (
          seq INTEGER PRIMARY KEY,
          record_key TEXT NOT NULL UNIQUE,
          id TEXT NOT NULL,
          timestamp REAL NOT NULL,
          instance_id TEXT NOT NULL,
          client_key_id TEXT NOT NULL,
          requested_model TEXT NOT NULL,
          model TEXT NOT NULL,
          route TEXT NOT NULL,
          counted_prompt_tokens INTEGER NOT NULL,
          prompt_tokens INTEGER NOT NULL,
          completion_tokens INTEGER NOT NULL,
          cached_tokens INTEGER NOT NULL,
          usage_reported INTEGER NOT NULL,
          cost_pico INTEGER,
          baseline_cost_pico INTEGER,
          latency_ms REAL NOT NULL,
          ttft_ms REAL,
          status INTEGER NOT NULL,
          error_type TEXT NOT NULL,
          attempts INTEGER NOT NULL,
          stream INTEGER NOT NULL
        );
        CREATE INDEX calls_id ON calls(id);
        CREATE INDEX calls_timestamp ON calls(timestamp);
      )sql"},
      // Per-model percentiles walk this index in latency order (LIMIT 1 OFFSET k) and
      // check the window without touching the table rows.
      Migration{"per-model latency index", R"sql(
        CREATE INDEX calls_model_latency ON calls(model, latency_ms, timestamp);
      )sql"},
      // Roll-ups (rollup.hpp): /stats reads these instead of scanning raw rows, and the
      // percentile index above is no longer needed. STRICT makes a sum that left the
      // 64-bit range (SQLite would turn it into a float) an error instead of a rounded value.
      Migration{"roll-ups", R"sql(
        CREATE TABLE rollups (
          width INTEGER NOT NULL,
          bucket INTEGER NOT NULL,
          instance_id TEXT NOT NULL,
          model TEXT NOT NULL,
          route TEXT NOT NULL,
          calls INTEGER NOT NULL,
          errors INTEGER NOT NULL,
          prompt_tokens INTEGER NOT NULL,
          completion_tokens INTEGER NOT NULL,
          priced_calls INTEGER NOT NULL,
          priced_cost_pico INTEGER NOT NULL,
          latency_sum REAL NOT NULL,
          baseline_cost_pico INTEGER NOT NULL,
          savings_pico INTEGER NOT NULL,
          PRIMARY KEY (width, bucket, instance_id, model, route)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE key_rollups (
          width INTEGER NOT NULL,
          bucket INTEGER NOT NULL,
          instance_id TEXT NOT NULL,
          client_key_id TEXT NOT NULL,
          calls INTEGER NOT NULL,
          prompt_tokens INTEGER NOT NULL,
          completion_tokens INTEGER NOT NULL,
          priced_calls INTEGER NOT NULL,
          priced_cost_pico INTEGER NOT NULL,
          PRIMARY KEY (width, bucket, instance_id, client_key_id)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE latency_rollups (
          width INTEGER NOT NULL,
          bucket INTEGER NOT NULL,
          instance_id TEXT NOT NULL,
          model TEXT NOT NULL,
          latency_bucket INTEGER NOT NULL,
          count INTEGER NOT NULL,
          min_ms REAL NOT NULL,
          max_ms REAL NOT NULL,
          PRIMARY KEY (width, bucket, instance_id, model, latency_bucket)
        ) STRICT, WITHOUT ROWID;
        DROP INDEX calls_model_latency;
      )sql"},  // the rows are built from the records by "series roll-ups", whose writer knows every table
      // Named values of the installation, such as its secret (installation_secret.hpp).
      Migration{"metadata table", R"sql(
        CREATE TABLE metadata (
          name TEXT PRIMARY KEY,
          value TEXT NOT NULL
        ) STRICT;
      )sql"},
      // /stats/series at any size (rollup.hpp): a latency histogram is one row per (width,
      // bucket, instance, model) holding all its cells (latency_histogram.hpp), not a row
      // per cell, and a six-hour width joins the others. Built from the stored roll-ups
      // (raw records may have been pruned): cells from latency_rollups, six-hour rows from
      // hour rows. printf('%.17g') reads back to the same double. Then, for a ledger from
      // before roll-ups, everything is built from the records.
      Migration{"series roll-ups", R"sql(
        CREATE TABLE latency_histograms (
          width INTEGER NOT NULL,
          bucket INTEGER NOT NULL,
          instance_id TEXT NOT NULL,
          model TEXT NOT NULL,
          cells TEXT NOT NULL,
          PRIMARY KEY (width, bucket, instance_id, model)
        ) STRICT, WITHOUT ROWID;
        INSERT INTO latency_rollups (width, bucket, instance_id, model, latency_bucket, count, min_ms, max_ms)
          SELECT 21600, bucket / 21600 * 21600, instance_id, model, latency_bucket, SUM(count), MIN(min_ms), MAX(max_ms)
          FROM latency_rollups WHERE width = 3600
          GROUP BY bucket / 21600, instance_id, model, latency_bucket;
        INSERT INTO latency_histograms (width, bucket, instance_id, model, cells)
          SELECT width, bucket, instance_id, model,
                 group_concat(printf('%d,%d,%.17g,%.17g', latency_bucket, count, min_ms, max_ms), ' ')
          FROM latency_rollups GROUP BY width, bucket, instance_id, model;
        DROP TABLE latency_rollups;
        INSERT INTO rollups (width, bucket, instance_id, model, route, calls, errors, prompt_tokens, completion_tokens,
                             priced_calls, priced_cost_pico, latency_sum, baseline_cost_pico, savings_pico)
          SELECT 21600, bucket / 21600 * 21600, instance_id, model, route, SUM(calls), SUM(errors), SUM(prompt_tokens),
                 SUM(completion_tokens), SUM(priced_calls), SUM(priced_cost_pico), TOTAL(latency_sum),
                 SUM(baseline_cost_pico), SUM(savings_pico)
          FROM rollups WHERE width = 3600
          GROUP BY bucket / 21600, instance_id, model, route;
        INSERT INTO key_rollups (width, bucket, instance_id, client_key_id, calls, prompt_tokens, completion_tokens,
                                 priced_calls, priced_cost_pico)
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
          expires_at_ms INTEGER,
          budget_pico INTEGER,
          budget_period TEXT NOT NULL,
          timezone TEXT NOT NULL,
          rpm INTEGER,
          tpm INTEGER,
          max_parallel INTEGER,
          created_at_ms INTEGER NOT NULL,
          updated_at_ms INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE gov_keys (
          id TEXT PRIMARY KEY,
          secret_sha256 TEXT NOT NULL,
          team_id TEXT REFERENCES gov_teams (id),
          name TEXT NOT NULL,
          models TEXT,
          expires_at_ms INTEGER,
          revoked_at_ms INTEGER,
          budget_pico INTEGER,
          budget_period TEXT NOT NULL,
          timezone TEXT NOT NULL,
          rpm INTEGER,
          tpm INTEGER,
          max_parallel INTEGER,
          created_at_ms INTEGER NOT NULL,
          updated_at_ms INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE gov_budgets (
          scope TEXT NOT NULL,
          period_start_ms INTEGER NOT NULL,
          spent_pico INTEGER NOT NULL DEFAULT 0,
          held_pico INTEGER NOT NULL DEFAULT 0,
          expired_pico INTEGER NOT NULL DEFAULT 0,
          PRIMARY KEY (scope, period_start_ms)
        ) STRICT;
        CREATE TABLE gov_holds (
          id TEXT PRIMARY KEY,
          key_scope TEXT NOT NULL,
          key_period_ms INTEGER NOT NULL,
          team_scope TEXT,
          team_period_ms INTEGER,
          amount_pico INTEGER NOT NULL,
          created_at_ms INTEGER NOT NULL,
          expires_at_ms INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX gov_holds_key_expiry ON gov_holds (key_scope, expires_at_ms);
        CREATE INDEX gov_holds_team_expiry ON gov_holds (team_scope, expires_at_ms);
        CREATE TABLE gov_audit (
          seq INTEGER PRIMARY KEY,
          at_ms INTEGER NOT NULL,
          actor TEXT NOT NULL,
          action TEXT NOT NULL,
          target TEXT NOT NULL,
          before_json TEXT,
          after_json TEXT
        ) STRICT;
      )sql"},
      // Which endpoint a call came in on (chat, embeddings, responses; every earlier call
      // was a chat call) and whether its count is an estimate or partial (Responses).
      // Added by ensure_call_columns, which migration 3's backfill may have run already.
      Migration{"call endpoint and count flags", "", &ensure_call_columns},
      // Requests per scope and minute (rpm): one row per fixed one-minute window, counted
      // in the hold's transaction so replicas share the count.
      Migration{"governance request counts", R"sql(
        CREATE TABLE gov_rates (
          scope TEXT NOT NULL,
          window_start_ms INTEGER NOT NULL,
          requests INTEGER NOT NULL DEFAULT 0,
          PRIMARY KEY (scope, window_start_ms)
        ) STRICT;
      )sql"},
      // Tokens per minute and concurrent requests: a window counts the tokens its calls
      // reserved (prompt + maximum output, settled to the actual usage), and a hold row
      // records what it reserved and in which window, so settling can give back the rest.
      // Every call on a key with tpm or max_parallel holds a row: the live rows are its slots.
      // Budget rows count holds charged by expiry and calls that cost more than their hold
      // (/metrics, /stats).
      Migration{"governance token counts, slots and hold outcomes", R"sql(
        ALTER TABLE gov_budgets ADD COLUMN expired_holds INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE gov_budgets ADD COLUMN overruns INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE gov_budgets ADD COLUMN overrun_pico INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE gov_rates ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE gov_holds ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE gov_holds ADD COLUMN rate_window_ms INTEGER;
      )sql"},
      // /stats's breakdown by endpoint (chat, embeddings, responses): one roll-up row per
      // (width, bucket, instance, endpoint). Built from what is stored: every call in the
      // totals roll-ups is first taken as chat (raw records may have been pruned), then the
      // non-chat calls still in `calls` are moved to their endpoint. Second rows only for
      // records within a day, as the writer does; CAST truncates, which is floor for the
      // positive timestamps a ledger holds.
      Migration{"endpoint roll-ups", R"sql(
        CREATE TABLE endpoint_rollups (
          width INTEGER NOT NULL,
          bucket INTEGER NOT NULL,
          instance_id TEXT NOT NULL,
          endpoint TEXT NOT NULL,
          calls INTEGER NOT NULL,
          errors INTEGER NOT NULL,
          prompt_tokens INTEGER NOT NULL,
          completion_tokens INTEGER NOT NULL,
          priced_calls INTEGER NOT NULL,
          priced_cost_pico INTEGER NOT NULL,
          latency_sum REAL NOT NULL,
          PRIMARY KEY (width, bucket, instance_id, endpoint)
        ) STRICT, WITHOUT ROWID;
        INSERT INTO endpoint_rollups (width, bucket, instance_id, endpoint, calls, errors, prompt_tokens,
                                      completion_tokens, priced_calls, priced_cost_pico, latency_sum)
          SELECT width, bucket, instance_id, 'chat', SUM(calls), SUM(errors), SUM(prompt_tokens),
                 SUM(completion_tokens), SUM(priced_calls), SUM(priced_cost_pico), TOTAL(latency_sum)
          FROM rollups GROUP BY width, bucket, instance_id;
        WITH widths (w) AS (VALUES (604800), (86400), (21600), (3600), (60), (1))
        INSERT INTO endpoint_rollups (width, bucket, instance_id, endpoint, calls, errors, prompt_tokens,
                                      completion_tokens, priced_calls, priced_cost_pico, latency_sum)
          SELECT w, CAST(timestamp AS INTEGER) / w * w AS start, instance_id, endpoint, COUNT(*),
                 SUM(error_type <> '' OR status >= 400), SUM(prompt_tokens), SUM(completion_tokens),
                 COUNT(cost_pico), COALESCE(SUM(cost_pico), 0), TOTAL(latency_ms)
          FROM calls JOIN widths ON w > 1 OR timestamp >= unixepoch() - 86400
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
                       TOTAL(latency_sum) AS latency_sum
                FROM endpoint_rollups WHERE endpoint <> 'chat' GROUP BY width, bucket, instance_id) AS moved
          WHERE endpoint_rollups.endpoint = 'chat' AND endpoint_rollups.width = moved.width
            AND endpoint_rollups.bucket = moved.bucket AND endpoint_rollups.instance_id = moved.instance_id;
        DELETE FROM endpoint_rollups WHERE calls <= 0;
      )sql"},
      // The served model's own count is taken only when something needs it (issue 16):
      // calls.counted_prompt_tokens may be NULL. SQLite cannot drop a NOT NULL in place.
      Migration{"uncounted served prompts", "", &allow_null_counted_prompt_tokens},
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
          key_period_ms INTEGER NOT NULL,
          team_scope TEXT,
          team_period_ms INTEGER,
          reserved_pico INTEGER NOT NULL,
          created_at_ms INTEGER NOT NULL,
          expires_at_ms INTEGER NOT NULL,
          returned_pico INTEGER NOT NULL DEFAULT 0
        ) STRICT;
        CREATE INDEX gov_leases_expiry ON gov_leases (expires_at_ms);
      )sql"},
      // Roll-ups are folded from the calls table after the calls commit (issue 16: the
      // writer's per-batch upserts were most of its CPU): `folded_through_seq` is the last
      // call seq counted in the roll-ups, moved in the same transaction as the roll-up
      // rows, so every call is counted exactly once whatever stops the process. Every
      // call already stored is in the roll-ups (written per batch until now). SQLite hands
      // out MAX(rowid) + 1, so deleting the newest rows (retention, or by hand) would let a
      // new call reuse a seq at or below the watermark and never be folded: deleting the
      // watermark's row lowers it to the largest seq left (rows below it stay folded).
      Migration{"roll-up watermark", R"sql(
        CREATE TABLE rollup_watermark (
          id INTEGER PRIMARY KEY CHECK (id = 1),
          folded_through_seq INTEGER NOT NULL
        ) STRICT;
        INSERT INTO rollup_watermark (id, folded_through_seq) SELECT 1, COALESCE(MAX(seq), 0) FROM calls;
      )sql",
                &create_watermark_trigger},
      // The fold counts only calls with counted_by_fold = 1, which this version's insert
      // writes. Gateways still running on the file (a rolling upgrade, or the new CLI run
      // against the old gateway) do not know the column, so their rows take its DEFAULT,
      // picked from the version the file had before this open (add_counted_by_fold).
      Migration{"calls counted by the fold", "", &add_counted_by_fold},
      // No statement looks a call up by its request id (stats, recent calls, export and
      // retention go by timestamp, the fold by seq, a re-sent record by record_key), and
      // every insert paid for the index: a WAL frame per commit, and with client-chosen
      // ids a random leaf per call (issue 16). An operator who wants it can create it. A
      // gateway of the version before that has the file open keeps writing until its writer
      // reopens the file (after a write error), which then refuses the newer schema, as for
      // every migration (its batches go to the spool until it is upgraded).
      Migration{"request ids not indexed", R"sql(
        DROP INDEX IF EXISTS calls_id;
      )sql"},
  };
  return migrations;
}

Result<void> allow_null_counted_prompt_tokens(Database& db) {
  // The table is rebuilt from its own definition as this database holds it, with only
  // that one constraint removed, so columns and indexes other migrations gave it stay.
  constexpr std::string_view kNotNull = "counted_prompt_tokens INTEGER NOT NULL";
  auto table = db.query_text("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'calls'");
  if (!table) {
    return table.error();
  }
  std::string definition = std::move(*table);
  const std::size_t column = definition.find(kNotNull);
  const std::size_t name = definition.find("calls");
  if (column == std::string::npos || name == std::string::npos) {
    return make_error("calls.counted_prompt_tokens is not the NOT NULL column this migration expects");
  }
  definition.replace(column, kNotNull.size(), "counted_prompt_tokens INTEGER");
  definition.replace(name, std::string_view("calls").size(), "calls_rebuilt");
  auto indexes = db.query_text(
      "SELECT COALESCE(group_concat(sql, ';'), '') FROM sqlite_schema "
      "WHERE type = 'index' AND tbl_name = 'calls' AND sql IS NOT NULL");
  if (!indexes) {
    return indexes.error();
  }
  const std::string rebuild = definition +
                              ";\nINSERT INTO calls_rebuilt SELECT * FROM calls;\nDROP TABLE calls;\n"
                              "ALTER TABLE calls_rebuilt RENAME TO calls;\n" +
                              *indexes + ";";
  return db.exec(rebuild);
}

Result<void> add_counted_by_fold(Database& db) {
  // migrate() stamps user_version after the last step, so this reads the version the file
  // had when this open began: what the gateways still writing to it were built for.
  auto version_before = db.query_int("PRAGMA user_version");
  if (!version_before) {
    return version_before.error();
  }
  const auto migrations = ledger_migrations();
  std::size_t watermark_step = 0;
  while (watermark_step < migrations.size() && migrations[watermark_step].description != "roll-up watermark") {
    ++watermark_step;
  }
  // A file that already had the watermark is written by a build that folds, every call
  // after the watermark included (its own ones awaiting the fold): DEFAULT 1. A file
  // brought past the watermark in this open is written by builds from before it, which
  // write a call's roll-ups in its own batch: DEFAULT 0 (already counted), and the
  // watermark was just set to the newest call, so nothing awaits the fold.
  const bool written_by_folding_build = *version_before > static_cast<std::int64_t>(watermark_step);
  return db.exec(fmt::format("ALTER TABLE calls ADD COLUMN counted_by_fold INTEGER NOT NULL DEFAULT {}",
                             written_by_folding_build ? 1 : 0));
}

Result<void> ensure_call_columns(Database& db) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 3> kColumns{{
      {"endpoint", "TEXT NOT NULL DEFAULT 'chat'"},
      {"count_estimated", "INTEGER NOT NULL DEFAULT 0"},
      {"count_partial", "INTEGER NOT NULL DEFAULT 0"},
  }};
  for (const auto& [name, definition] : kColumns) {
    auto present =
        db.query_int(fmt::format("SELECT COUNT(*) FROM pragma_table_info('calls') WHERE name = '{}'", name));
    if (!present) {
      return present.error();
    }
    if (*present != 0) {
      continue;
    }
    if (auto added = db.exec(fmt::format("ALTER TABLE calls ADD COLUMN {} {}", name, definition)); !added) {
      return added;
    }
  }
  return {};
}

Result<void> ensure_watermark_trigger(Database& db) {
  auto present = db.query_int(
      "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'trigger' AND name = 'calls_watermark_row_deleted'");
  if (!present) {
    return present.error();
  }
  if (*present != 0) {
    return {};
  }
  auto transaction = Transaction::begin(db, "BEGIN IMMEDIATE");
  if (!transaction) {
    return transaction.error();
  }
  if (auto created = create_watermark_trigger(db); !created) {
    return created;
  }
  // What the trigger would have done for the deletes it missed.
  if (auto lowered = db.exec(
          "UPDATE rollup_watermark "
          "SET folded_through_seq = MIN(folded_through_seq, (SELECT COALESCE(MAX(seq), 0) FROM calls))");
      !lowered) {
    return lowered;
  }
  return transaction->commit();
}

Result<void> migrate(Database& db, std::span<const Migration> migrations) {
  auto transaction = Transaction::begin(db, "BEGIN IMMEDIATE");
  if (!transaction) {
    return transaction.error();
  }
  auto version = db.query_int("PRAGMA user_version");
  if (!version) {
    return version.error();
  }
  const auto newest = static_cast<std::int64_t>(migrations.size());
  if (*version > newest) {
    return make_error(fmt::format(
        "ledger schema version {} is newer than this turnout supports ({}); upgrade turnout", *version, newest));
  }
  if (*version < 0) {
    return make_error(fmt::format("ledger schema version {} is invalid", *version));
  }
  if (*version == newest) {
    return {};  // nothing to do; the destructor ends the read-only transaction
  }
  for (auto step = static_cast<std::size_t>(*version); step < migrations.size(); ++step) {
    auto applied = db.exec(migrations[step].sql);
    if (applied && migrations[step].then != nullptr) {
      applied = migrations[step].then(db);
    }
    if (!applied) {
      return make_error(fmt::format("ledger migration {} ({}) failed: {}", step + 1, migrations[step].description,
                                    applied.error().message));
    }
  }
  // user_version lives in the database header, so it commits or rolls back with the steps.
  if (auto stamped = db.exec(fmt::format("PRAGMA user_version = {}", newest)); !stamped) {
    return stamped.error();
  }
  return transaction->commit();
}

}  // namespace turnout::ledger::sqlite
