#include "governance/admit_statement.hpp"

#include <array>

namespace turnout::governance {
namespace {

constexpr std::int64_t kRateWindowMs = 60'000;  // as turnout_admit's fixed one-minute windows

constexpr const char* kAdmitSql =
    "SELECT * FROM turnout_admit($1::text, $2::bigint, $3::bigint, $4::bigint, $5::bigint, $6::text, $7::bigint, "
    "$8::bigint, $9::bigint, $10::bigint, $11::bigint, $12::text, $13::bigint, $14::bigint, $15::bigint, "
    "$16::bigint, $17::bigint)";

// The result's columns, in turnout_admit's OUT order.
enum Column : std::size_t {
  refused_scope,
  refused_budget,
  refused_used,
  rate_scope,
  rate_kind,
  rate_limit,
  rate_used,
  rpm_scope,
  rpm_limit,
  rpm_used,
  tpm_scope,
  tpm_limit,
  tpm_used,
  remaining_pico,
  column_count
};

template <class T>
SqlParam optional_text(const std::optional<T>& value) {
  return value ? SqlParam(std::to_string(*value)) : std::nullopt;
}

}  // namespace

StoreResult<HoldOutcome> admit_in_one_statement(SqlSession& session, const HoldRequest& request,
                                                const std::vector<ScopePlan>& plans) {
  const ScopePlan* key_plan = plans.empty() ? nullptr : &plans.front();
  const ScopePlan* team_plan = plans.size() > 1 ? &plans[1] : nullptr;
  const Limits& key = request.key->limits;
  const Limits* team = request.team != nullptr ? &request.team->limits : nullptr;
  const std::array<SqlParam, 17> params{
      request.hold_id,
      std::to_string(request.now_ms),
      std::to_string(request.expires_at_ms),
      std::to_string(request.amount_pico),
      std::to_string(request.tokens),
      key_scope(request.key->id),
      key_plan ? SqlParam(std::to_string(key_plan->period.start_ms)) : std::nullopt,
      key_plan ? optional_text(key_plan->budget_pico) : std::nullopt,
      optional_text(key.rpm),
      optional_text(key.tpm),
      optional_text(key.max_parallel),
      team ? SqlParam(team_scope(request.team->id)) : std::nullopt,
      team_plan ? SqlParam(std::to_string(team_plan->period.start_ms)) : std::nullopt,
      team_plan ? optional_text(team_plan->budget_pico) : std::nullopt,
      team ? optional_text(team->rpm) : std::nullopt,
      team ? optional_text(team->tpm) : std::nullopt,
      team ? optional_text(team->max_parallel) : std::nullopt};
  auto rows = session.run(kAdmitSql, params);
  if (!rows) return StoreError{FailureKind::database, rows.error().message};
  if (rows->size() != 1 || rows->front().size() != column_count) {
    return StoreError{FailureKind::database, "turnout_admit returned an unexpected result"};
  }
  const SqlRow& row = rows->front();
  const std::int64_t window_end = request.now_ms - request.now_ms % kRateWindowMs + kRateWindowMs;

  HoldOutcome outcome;
  if (row[refused_scope]) {
    BudgetShortfall shortfall{*row[refused_scope], sql_integer(row[refused_budget]), sql_integer(row[refused_used]),
                              request.amount_pico, {}};
    for (const ScopePlan& plan : plans) {
      if (plan.scope == shortfall.scope) shortfall.period = plan.period;
    }
    outcome.refused = std::move(shortfall);
  }
  if (row[rate_scope]) {
    const auto kind = static_cast<RateKind>(sql_integer(row[rate_kind]));
    RequestWindow window{*row[rate_scope], sql_count(row[rate_limit]), sql_count(row[rate_used]), window_end, kind, 1};
    if (kind == RateKind::tokens) window.requested = request.tokens;
    // A slot frees when a call settles, not at a window's end: retry shortly.
    if (kind == RateKind::parallel) window.window_end_ms = request.now_ms + 1000;
    outcome.rate_refused = std::move(window);
  }
  if (row[rpm_scope]) {
    outcome.requests = RequestWindow{*row[rpm_scope], sql_count(row[rpm_limit]), sql_count(row[rpm_used]), window_end,
                                     RateKind::requests, 1};
  }
  if (row[tpm_scope]) {
    outcome.tokens = RequestWindow{*row[tpm_scope], sql_count(row[tpm_limit]), sql_count(row[tpm_used]), window_end,
                                   RateKind::tokens, request.tokens};
  }
  if (row[remaining_pico]) outcome.remaining_pico = sql_integer(row[remaining_pico]);
  return outcome;
}

}  // namespace turnout::governance
