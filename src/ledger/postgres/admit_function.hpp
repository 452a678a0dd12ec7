#pragma once
// turnout_admit(): a governance admission on PostgreSQL in one statement, so one round
// trip (docs/ARCHITECTURE.md "Governance"). It does what GovernanceStore::hold does on
// SQLite in one BEGIN IMMEDIATE transaction, with the same answers: called in autocommit,
// the statement is its own transaction, and every lock it takes is held to its end.
//
// Lock order, the same for every admission (so none deadlocks with another): the
// per-scope slot locks (advisory, key before team, only for scopes with max_parallel),
// then the budget rows (key before team), then the rate rows (key before team). The slot
// lock does not depend on the budget period or the minute, so two admissions straddling a
// period start cannot both count the same free slot.
//
// Arguments: the hold's id, now, expiry, amount and reserved tokens; per scope (key, then
// team: NULL scope when the key has none) its budget period start (NULL: no hold row,
// requests are only counted), budget, rpm, tpm and max_parallel (NULL: no such limit).
// Results, one row: the budget shortfall (first scope without room), the rate refusal
// (kind 0 rpm, 1 tpm, 2 max_parallel: the first full one, key before team), the
// tightest rpm and tpm windows before this request, and the remaining budget.
#include <string_view>

namespace turnout::ledger::pg {

inline constexpr std::string_view kAdmitFunctionSql = R"sql(
CREATE OR REPLACE FUNCTION turnout_admit(
    p_hold_id TEXT, p_now_ms BIGINT, p_expires_at_ms BIGINT, p_amount BIGINT, p_tokens BIGINT,
    p_key_scope TEXT, p_key_period BIGINT, p_key_budget BIGINT,
    p_key_rpm BIGINT, p_key_tpm BIGINT, p_key_parallel BIGINT,
    p_team_scope TEXT, p_team_period BIGINT, p_team_budget BIGINT,
    p_team_rpm BIGINT, p_team_tpm BIGINT, p_team_parallel BIGINT,
    OUT refused_scope TEXT, OUT refused_budget BIGINT, OUT refused_used BIGINT,
    OUT rate_scope TEXT, OUT rate_kind INT, OUT rate_limit BIGINT, OUT rate_used BIGINT,
    OUT rpm_scope TEXT, OUT rpm_limit BIGINT, OUT rpm_used BIGINT,
    OUT tpm_scope TEXT, OUT tpm_limit BIGINT, OUT tpm_used BIGINT,
    OUT remaining_pico BIGINT)
LANGUAGE plpgsql AS $admit$
DECLARE
  v_window BIGINT := p_now_ms - p_now_ms % 60000;  -- rpm and tpm count fixed one-minute windows
  v_scopes TEXT[] := '{}';    -- budget rows: key before team
  v_periods BIGINT[] := '{}';
  v_budgets BIGINT[] := '{}';
  v_rated TEXT[] := '{}';     -- rate-limited scopes: key before team
  v_rpm BIGINT[] := '{}';
  v_tpm BIGINT[] := '{}';
  v_parallel BIGINT[] := '{}';
  v_spent BIGINT;
  v_held BIGINT;
  v_room BIGINT;
  v_least BIGINT;
  v_requests BIGINT;
  v_tokens BIGINT;
  v_live BIGINT;
  v_reserved BIGINT;
  -- The first full limit of each kind (1 rpm, 2 tpm, 3 max_parallel), key before team.
  v_full_scope TEXT[] := ARRAY[NULL, NULL, NULL]::TEXT[];
  v_full_limit BIGINT[] := ARRAY[NULL, NULL, NULL]::BIGINT[];
  v_full_used BIGINT[] := ARRAY[NULL, NULL, NULL]::BIGINT[];
  i INT;
BEGIN
  IF p_key_period IS NOT NULL THEN
    v_scopes := ARRAY[p_key_scope];
    v_periods := ARRAY[p_key_period];
    v_budgets := ARRAY[p_key_budget];
    IF p_team_scope IS NOT NULL THEN
      v_scopes := v_scopes || p_team_scope;
      v_periods := v_periods || p_team_period;
      v_budgets := v_budgets || p_team_budget;
    END IF;
  END IF;
  IF COALESCE(p_key_rpm, p_key_tpm, p_key_parallel) IS NOT NULL THEN
    v_rated := v_rated || p_key_scope;
    v_rpm := v_rpm || p_key_rpm;
    v_tpm := v_tpm || p_key_tpm;
    v_parallel := v_parallel || p_key_parallel;
  END IF;
  IF p_team_scope IS NOT NULL AND COALESCE(p_team_rpm, p_team_tpm, p_team_parallel) IS NOT NULL THEN
    v_rated := v_rated || p_team_scope;
    v_rpm := v_rpm || p_team_rpm;
    v_tpm := v_tpm || p_team_tpm;
    v_parallel := v_parallel || p_team_parallel;
  END IF;

  -- Slots: one lock per scope, whatever the period or minute.
  FOR i IN 1 .. COALESCE(array_length(v_rated, 1), 0) LOOP
    IF v_parallel[i] IS NOT NULL THEN
      PERFORM pg_advisory_xact_lock(1953461364, hashtext(v_rated[i]));
    END IF;
  END LOOP;

  -- Budget rows: created if missing, locked, this scope's expired holds charged in full.
  IF array_length(v_scopes, 1) IS NOT NULL THEN
    INSERT INTO gov_budgets (scope, period_start_ms)
      SELECT * FROM unnest(v_scopes, v_periods) ON CONFLICT (scope, period_start_ms) DO NOTHING;
    PERFORM 1 FROM gov_budgets WHERE (scope, period_start_ms) IN (SELECT * FROM unnest(v_scopes, v_periods))
      ORDER BY scope FOR UPDATE;
    WITH gone AS (
      DELETE FROM gov_holds
      WHERE expires_at_ms <= p_now_ms AND (key_scope = ANY (v_scopes) OR team_scope = ANY (v_scopes))
      RETURNING key_scope, key_period_ms, team_scope, team_period_ms, amount_pico
    ), charged AS (
      SELECT key_scope AS scope, key_period_ms AS period, amount_pico FROM gone
      UNION ALL
      SELECT team_scope, team_period_ms, amount_pico FROM gone
        WHERE team_scope IS NOT NULL AND team_period_ms IS NOT NULL
    ), sums AS (
      SELECT scope, period, SUM(amount_pico)::BIGINT AS amount, COUNT(*) AS holds FROM charged GROUP BY scope, period
    )
    UPDATE gov_budgets b SET spent_pico = b.spent_pico + s.amount, held_pico = b.held_pico - s.amount,
                             expired_pico = b.expired_pico + s.amount, expired_holds = b.expired_holds + s.holds
      FROM sums s WHERE b.scope = s.scope AND b.period_start_ms = s.period;
    FOR i IN 1 .. array_length(v_scopes, 1) LOOP
      CONTINUE WHEN v_budgets[i] IS NULL;
      SELECT spent_pico, held_pico INTO v_spent, v_held
        FROM gov_budgets WHERE scope = v_scopes[i] AND period_start_ms = v_periods[i];
      v_room := v_budgets[i] - v_spent - v_held;
      v_least := LEAST(COALESCE(v_least, v_room), v_room);
      IF p_amount > v_room AND refused_scope IS NULL THEN
        refused_scope := v_scopes[i];
        refused_budget := v_budgets[i];
        refused_used := v_spent + v_held;
      END IF;
    END LOOP;
    IF v_least IS NOT NULL THEN
      remaining_pico := GREATEST(CASE WHEN refused_scope IS NULL THEN v_least - p_amount ELSE v_least END, 0);
    END IF;
  END IF;

  -- Rate rows: this minute's, created if missing, past ones pruned, locked.
  FOR i IN 1 .. COALESCE(array_length(v_rated, 1), 0) LOOP
    INSERT INTO gov_rates (scope, window_start_ms) VALUES (v_rated[i], v_window)
      ON CONFLICT (scope, window_start_ms) DO NOTHING;
    DELETE FROM gov_rates WHERE scope = v_rated[i] AND window_start_ms < v_window;
    SELECT GREATEST(requests, 0), GREATEST(tokens, 0) INTO v_requests, v_tokens
      FROM gov_rates WHERE scope = v_rated[i] AND window_start_ms = v_window FOR UPDATE;
    v_requests := COALESCE(v_requests, 0);
    v_tokens := COALESCE(v_tokens, 0);
    IF v_rpm[i] IS NOT NULL THEN
      IF v_requests >= v_rpm[i] AND v_full_scope[1] IS NULL THEN
        v_full_scope[1] := v_rated[i]; v_full_limit[1] := v_rpm[i]; v_full_used[1] := v_requests;
      END IF;
      IF rpm_scope IS NULL OR GREATEST(v_rpm[i] - v_requests, 0) < GREATEST(rpm_limit - rpm_used, 0) THEN
        rpm_scope := v_rated[i]; rpm_limit := v_rpm[i]; rpm_used := v_requests;
      END IF;
    END IF;
    IF v_tpm[i] IS NOT NULL THEN
      IF p_tokens > GREATEST(v_tpm[i] - v_tokens, 0) AND v_full_scope[2] IS NULL THEN
        v_full_scope[2] := v_rated[i]; v_full_limit[2] := v_tpm[i]; v_full_used[2] := v_tokens;
      END IF;
      IF tpm_scope IS NULL OR GREATEST(v_tpm[i] - v_tokens, 0) < GREATEST(tpm_limit - tpm_used, 0) THEN
        tpm_scope := v_rated[i]; tpm_limit := v_tpm[i]; tpm_used := v_tokens;
      END IF;
    END IF;
    IF v_parallel[i] IS NOT NULL THEN
      IF v_rated[i] = p_key_scope THEN  -- live holds name a key and a team in their own columns
        SELECT COUNT(*) INTO v_live FROM gov_holds WHERE key_scope = v_rated[i] AND expires_at_ms > p_now_ms;
      ELSE
        SELECT COUNT(*) INTO v_live FROM gov_holds WHERE team_scope = v_rated[i] AND expires_at_ms > p_now_ms;
      END IF;
      IF v_live >= v_parallel[i] AND v_full_scope[3] IS NULL THEN
        v_full_scope[3] := v_rated[i]; v_full_limit[3] := v_parallel[i]; v_full_used[3] := v_live;
      END IF;
    END IF;
  END LOOP;
  FOR i IN 1 .. 3 LOOP
    IF v_full_scope[i] IS NOT NULL THEN
      rate_scope := v_full_scope[i]; rate_kind := i - 1; rate_limit := v_full_limit[i]; rate_used := v_full_used[i];
      EXIT;
    END IF;
  END LOOP;

  IF rate_scope IS NOT NULL AND refused_scope IS NULL AND remaining_pico IS NOT NULL THEN
    remaining_pico := remaining_pico + p_amount;  -- it fit, so nothing was taken: as it stands
  END IF;
  IF rate_scope IS NOT NULL OR refused_scope IS NOT NULL THEN
    RETURN;  -- refused: nothing held or counted (the sweep above stands)
  END IF;

  -- Tokens are reserved only with a hold row, the thing that settles them to the actual use.
  v_reserved := CASE WHEN array_length(v_scopes, 1) IS NOT NULL AND array_length(v_rated, 1) IS NOT NULL
                     THEN p_tokens ELSE 0 END;
  IF array_length(v_scopes, 1) IS NOT NULL THEN
    INSERT INTO gov_holds (id, key_scope, key_period_ms, team_scope, team_period_ms, amount_pico, created_at_ms,
                           expires_at_ms, tokens, rate_window_ms)
      VALUES (p_hold_id, p_key_scope, p_key_period, v_scopes[2], v_periods[2], p_amount, p_now_ms, p_expires_at_ms,
              v_reserved, CASE WHEN array_length(v_rated, 1) IS NOT NULL THEN v_window END);
    UPDATE gov_budgets SET held_pico = held_pico + p_amount
      WHERE (scope, period_start_ms) IN (SELECT * FROM unnest(v_scopes, v_periods));
  END IF;
  UPDATE gov_rates SET requests = requests + 1, tokens = tokens + v_reserved
    WHERE scope = ANY (v_rated) AND window_start_ms = v_window;
END
$admit$;
)sql";

}  // namespace turnout::ledger::pg
