#pragma once
// What governance stores about teams and virtual keys, and the changes an admin asks for.
// Money is integer pico-dollars (pricing::Money), times unix milliseconds.
#include "governance/period.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace turnout::governance {

struct Limits {
  std::optional<std::int64_t> budget_pico;  // none: no budget
  BudgetPeriod budget_period = BudgetPeriod::month;
  std::string timezone = "UTC";
  std::optional<std::uint64_t> rpm;
  std::optional<std::uint64_t> tpm;
  std::optional<std::uint64_t> max_parallel;

  // Whether anything here limits a call (a limited key fails closed when the database is away).
  bool any() const { return budget_pico || rpm || tpm || max_parallel; }
};

struct TeamRecord {
  std::string id;  // the name given at creation; what keys refer to
  std::string name;
  std::optional<std::vector<std::string>> models;  // allow-list; none: every model
  std::optional<std::int64_t> expires_at_ms;
  Limits limits;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

struct KeyRecord {
  std::string id;  // public id
  std::string secret_sha256;
  std::optional<std::string> team_id;
  std::string name;
  std::optional<std::vector<std::string>> models;
  std::optional<std::int64_t> expires_at_ms;
  std::optional<std::int64_t> revoked_at_ms;
  Limits limits;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

// An optional field that an update may set or clear (`clear` wins over `value`).
template <class T>
struct Change {
  std::optional<T> value;
  bool clear = false;
  bool given() const { return value.has_value() || clear; }
  void apply(std::optional<T>& field) const {
    if (clear) {
      field.reset();
    } else if (value) {
      field = value;
    }
  }
};

// The fields of a create or update, each only when given.
struct Fields {
  std::optional<std::string> name;
  Change<std::string> team;
  Change<std::vector<std::string>> models;
  Change<std::int64_t> expires_at_ms;
  Change<std::int64_t> budget_pico;
  std::optional<BudgetPeriod> budget_period;
  std::optional<std::string> timezone;
  Change<std::uint64_t> rpm;
  Change<std::uint64_t> tpm;
  Change<std::uint64_t> max_parallel;
};

// Budget figures of one scope in its current period.
struct ScopeUsage {
  PeriodWindow period;
  std::int64_t spent_pico = 0;
  std::int64_t held_pico = 0;
  std::optional<std::int64_t> remaining_pico;  // none without a budget; never below 0
  std::uint64_t requests_this_minute = 0;       // admitted in the current one-minute window
  std::uint64_t tokens_this_minute = 0;         // reserved (settled: used) in that window
};

}  // namespace turnout::governance
