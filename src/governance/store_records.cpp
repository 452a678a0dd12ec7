// Teams, keys and the audit trail (store.hpp).
#include "governance/record_json.hpp"
#include "governance/store.hpp"
#include "governance/change_listener.hpp"
#include "governance/virtual_key.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>

namespace turnout::governance {
namespace {

constexpr std::string_view kKeyColumns =
    "id, secret_sha256, team_id, name, models, expires_at_ms, revoked_at_ms, budget_pico, budget_period, timezone, "
    "rpm, tpm, max_parallel, created_at_ms, updated_at_ms";
constexpr std::string_view kTeamColumns =
    "id, name, models, expires_at_ms, budget_pico, budget_period, timezone, rpm, tpm, max_parallel, created_at_ms, "
    "updated_at_ms";
constexpr std::size_t kMaxNameBytes = 200;
constexpr std::size_t kMaxModels = 1000;

StoreError invalid(std::string message) { return StoreError{FailureKind::invalid, std::move(message)}; }

template <class T>
std::optional<T> number(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  T value{};
  std::from_chars(text->data(), text->data() + text->size(), value);
  return value;
}

template <class T>
SqlParam param(const std::optional<T>& value) {
  if (!value) return std::nullopt;
  return std::to_string(*value);
}

SqlParam models_param(const std::optional<std::vector<std::string>>& models) {
  if (!models) return std::nullopt;
  boost::json::array array;
  for (const auto& model : *models) array.emplace_back(model);
  return boost::json::serialize(array);
}

std::optional<std::vector<std::string>> parse_models(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  std::vector<std::string> models;
  boost::system::error_code ec;
  const auto value = boost::json::parse(*text, ec);
  if (!ec && value.is_array()) {
    for (const auto& item : value.as_array()) {
      if (item.is_string()) models.emplace_back(item.as_string());
    }
  }
  return models;
}

Limits read_limits(const SqlRow& row, std::size_t first) {
  Limits limits;
  limits.budget_pico = number<std::int64_t>(row[first]);
  limits.budget_period = parse_budget_period(row[first + 1].value_or("month")).value_or(BudgetPeriod::month);
  limits.timezone = row[first + 2].value_or("UTC");
  limits.rpm = number<std::uint64_t>(row[first + 3]);
  limits.tpm = number<std::uint64_t>(row[first + 4]);
  limits.max_parallel = number<std::uint64_t>(row[first + 5]);
  return limits;
}

KeyRecord read_key(const SqlRow& row) {
  KeyRecord key;
  key.id = row[0].value_or("");
  key.secret_sha256 = row[1].value_or("");
  key.team_id = row[2];
  key.name = row[3].value_or("");
  key.models = parse_models(row[4]);
  key.expires_at_ms = number<std::int64_t>(row[5]);
  key.revoked_at_ms = number<std::int64_t>(row[6]);
  key.limits = read_limits(row, 7);
  key.created_at_ms = number<std::int64_t>(row[13]).value_or(0);
  key.updated_at_ms = number<std::int64_t>(row[14]).value_or(0);
  return key;
}

TeamRecord read_team(const SqlRow& row) {
  TeamRecord team;
  team.id = row[0].value_or("");
  team.name = row[1].value_or("");
  team.models = parse_models(row[2]);
  team.expires_at_ms = number<std::int64_t>(row[3]);
  team.limits = read_limits(row, 4);
  team.created_at_ms = number<std::int64_t>(row[10]).value_or(0);
  team.updated_at_ms = number<std::int64_t>(row[11]).value_or(0);
  return team;
}

// Applies the fields common to keys and teams, validating each.
StoreResult<void> apply_common(const Fields& fields, std::string& name, std::optional<std::vector<std::string>>& models,
                               std::optional<std::int64_t>& expires_at_ms, Limits& limits) {
  if (fields.name) {
    if (fields.name->empty() || fields.name->size() > kMaxNameBytes)
      return invalid(fmt::format("'name' must be 1 to {} bytes", kMaxNameBytes));
    name = *fields.name;
  }
  if (fields.models.value) {
    const auto& list = *fields.models.value;
    if (list.size() > kMaxModels) return invalid(fmt::format("'models' may list at most {} models", kMaxModels));
    if (std::any_of(list.begin(), list.end(), [](const std::string& m) { return m.empty() || m.size() > 256; }))
      return invalid("'models' must list model names (1 to 256 bytes each)");
  }
  fields.models.apply(models);
  fields.expires_at_ms.apply(expires_at_ms);
  if (fields.budget_pico.value && *fields.budget_pico.value < 0) return invalid("'budget_usd' must not be negative");
  fields.budget_pico.apply(limits.budget_pico);
  if (fields.budget_period) limits.budget_period = *fields.budget_period;
  if (fields.timezone) {
    if (!known_timezone(*fields.timezone))
      return invalid(fmt::format("'timezone': unknown IANA time zone '{}'", fields.timezone->substr(0, 64)));
    limits.timezone = *fields.timezone;
  }
  fields.rpm.apply(limits.rpm);
  fields.tpm.apply(limits.tpm);
  fields.max_parallel.apply(limits.max_parallel);
  return {};
}

bool valid_team_id(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
}

// Inside the write's transaction: PostgreSQL delivers it at commit, to every replica's
// ChangeListener (change_listener.hpp), which drops the scope from its key cache.
StoreResult<void> notify_change(SqlSession& session, const std::string& scope) {
  if (session.engine() != Engine::postgresql) return {};
  auto sent = session.run("SELECT pg_notify($1, $2)", std::array<SqlParam, 2>{std::string(kChangeChannel), scope});
  if (!sent) return database_error(sent.error());
  return {};
}

}  // namespace

std::string key_scope(std::string_view key_id) { return fmt::format("key:{}", key_id); }
std::string team_scope(std::string_view team_id) { return fmt::format("team:{}", team_id); }

Result<std::unique_ptr<GovernanceStore>> GovernanceStore::open(const std::string& ledger_url,
                                                               WalCheckpoints checkpoints) {
  auto session = open_sql_session(ledger_url, checkpoints);
  if (!session) return session.error();
  return std::make_unique<GovernanceStore>(std::move(*session));
}

StoreResult<std::optional<TeamRecord>> GovernanceStore::load_team(const std::string& id) {
  const std::array<SqlParam, 1> params{id};
  auto rows = session_->run(fmt::format("SELECT {} FROM gov_teams WHERE id = $1", kTeamColumns), params);
  if (!rows) return database_error(rows.error());
  if (rows->empty()) return std::optional<TeamRecord>{};
  return std::optional<TeamRecord>(read_team(rows->front()));
}

StoreResult<std::optional<KeyRecord>> GovernanceStore::load_key(const std::string& id) {
  const std::array<SqlParam, 1> params{id};
  auto rows = session_->run(fmt::format("SELECT {} FROM gov_keys WHERE id = $1", kKeyColumns), params);
  if (!rows) return database_error(rows.error());
  if (rows->empty()) return std::optional<KeyRecord>{};
  return std::optional<KeyRecord>(read_key(rows->front()));
}

StoreResult<void> GovernanceStore::write_team(const TeamRecord& t, bool insert) {
  const std::array<SqlParam, 12> params{
      t.id, t.name, models_param(t.models), param(t.expires_at_ms), param(t.limits.budget_pico),
      std::string(budget_period_name(t.limits.budget_period)), t.limits.timezone, param(t.limits.rpm),
      param(t.limits.tpm), param(t.limits.max_parallel), std::to_string(t.created_at_ms),
      std::to_string(t.updated_at_ms)};
  const std::string sql =
      insert ? fmt::format("INSERT INTO gov_teams ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                           kTeamColumns)
             : "UPDATE gov_teams SET name = $2, models = $3, expires_at_ms = $4, budget_pico = $5, budget_period = $6, "
               "timezone = $7, rpm = $8, tpm = $9, max_parallel = $10, created_at_ms = $11, updated_at_ms = $12 "
               "WHERE id = $1";
  if (auto done = session_->run(sql, params); !done) return database_error(done.error());
  return {};
}

StoreResult<void> GovernanceStore::write_key(const KeyRecord& k, bool insert) {
  const std::array<SqlParam, 15> params{
      k.id, k.secret_sha256, k.team_id, k.name, models_param(k.models), param(k.expires_at_ms),
      param(k.revoked_at_ms), param(k.limits.budget_pico), std::string(budget_period_name(k.limits.budget_period)),
      k.limits.timezone, param(k.limits.rpm), param(k.limits.tpm), param(k.limits.max_parallel),
      std::to_string(k.created_at_ms), std::to_string(k.updated_at_ms)};
  const std::string sql =
      insert ? fmt::format("INSERT INTO gov_keys ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, "
                           "$14, $15)",
                           kKeyColumns)
             : "UPDATE gov_keys SET secret_sha256 = $2, team_id = $3, name = $4, models = $5, expires_at_ms = $6, "
               "revoked_at_ms = $7, budget_pico = $8, budget_period = $9, timezone = $10, rpm = $11, tpm = $12, "
               "max_parallel = $13, created_at_ms = $14, updated_at_ms = $15 WHERE id = $1";
  if (auto done = session_->run(sql, params); !done) return database_error(done.error());
  return {};
}

StoreResult<void> GovernanceStore::audit(const std::string& actor, std::string_view action, const std::string& target,
                                         const std::optional<std::string>& before,
                                         const std::optional<std::string>& after, std::int64_t now_ms) {
  const std::array<SqlParam, 6> params{std::to_string(now_ms), actor, std::string(action), target, before, after};
  auto done = session_->run(
      "INSERT INTO gov_audit (at_ms, actor, action, target, before_json, after_json) VALUES ($1, $2, $3, $4, $5, $6)",
      params);
  if (!done) return database_error(done.error());
  return {};
}

StoreResult<TeamRecord> GovernanceStore::create_team(const std::string& id, const Fields& fields,
                                                     const std::string& actor, std::int64_t now_ms) {
  if (!valid_team_id(id)) return invalid("'name' of a team must be 1 to 64 letters, digits, '-', '_' or '.'");
  if (fields.team.given()) return invalid("'team' is a field of keys, not of teams");
  TeamRecord team;
  team.id = id;
  team.name = id;
  if (auto applied = apply_common(fields, team.name, team.models, team.expires_at_ms, team.limits); !applied)
    return applied.error();
  team.created_at_ms = team.updated_at_ms = now_ms;
  std::lock_guard lock(mutex_);
  auto transaction = WriteTransaction::begin(*session_);
  if (!transaction) return database_error(transaction.error());
  auto existing = load_team(id);
  if (!existing) return existing.error();
  if (*existing) return StoreError{FailureKind::conflict, fmt::format("team '{}' already exists", id)};
  if (auto written = write_team(team, true); !written) return written.error();
  if (auto audited = audit(actor, "team.create", id, std::nullopt, team_json(team), now_ms); !audited)
    return audited.error();
  if (auto committed = transaction->commit(); !committed) return database_error(committed.error());
  return team;
}

StoreResult<TeamRecord> GovernanceStore::modify_team(const std::string& id, std::string_view action,
                                                     const std::string& actor, std::int64_t now_ms,
                                                     const std::function<StoreResult<void>(TeamRecord&)>& change) {
  std::lock_guard lock(mutex_);
  auto transaction = WriteTransaction::begin(*session_);
  if (!transaction) return database_error(transaction.error());
  auto existing = load_team(id);
  if (!existing) return existing.error();
  if (!*existing) return StoreError{FailureKind::not_found, fmt::format("no team '{}'", id.substr(0, 64))};
  TeamRecord team = **existing;
  if (auto changed = change(team); !changed) return changed.error();
  team.updated_at_ms = now_ms;
  if (auto written = write_team(team, false); !written) return written.error();
  if (auto audited = audit(actor, action, id, team_json(**existing), team_json(team), now_ms); !audited)
    return audited.error();
  if (auto notified = notify_change(*session_, team_scope(id)); !notified) return notified.error();
  if (auto committed = transaction->commit(); !committed) return database_error(committed.error());
  return team;
}

StoreResult<TeamRecord> GovernanceStore::update_team(const std::string& id, const Fields& fields,
                                                     const std::string& actor, std::int64_t now_ms) {
  if (fields.team.given()) return invalid("'team' is a field of keys, not of teams");
  return modify_team(id, "team.update", actor, now_ms, [&](TeamRecord& team) {
    return apply_common(fields, team.name, team.models, team.expires_at_ms, team.limits);
  });
}

StoreResult<std::vector<TeamRecord>> GovernanceStore::list_teams() {
  std::lock_guard lock(mutex_);
  auto rows = session_->run(fmt::format("SELECT {} FROM gov_teams ORDER BY id", kTeamColumns));
  if (!rows) return database_error(rows.error());
  std::vector<TeamRecord> teams;
  for (const SqlRow& row : *rows) teams.push_back(read_team(row));
  return teams;
}

StoreResult<TeamRecord> GovernanceStore::find_team(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto team = load_team(id);
  if (!team) return team.error();
  if (!*team) return StoreError{FailureKind::not_found, fmt::format("no team '{}'", id.substr(0, 64))};
  return std::move(**team);
}

StoreResult<CreatedKey> GovernanceStore::create_key(const Fields& fields, const std::string& actor,
                                                    std::int64_t now_ms) {
  if (!fields.name) return invalid("'name' is required");
  auto made = generate_virtual_key();
  if (!made) return database_error(made.error());
  KeyRecord key;
  key.id = made->public_id;
  key.secret_sha256 = made->secret_sha256;
  if (auto applied = apply_common(fields, key.name, key.models, key.expires_at_ms, key.limits); !applied)
    return applied.error();
  fields.team.apply(key.team_id);
  key.created_at_ms = key.updated_at_ms = now_ms;
  std::lock_guard lock(mutex_);
  auto transaction = WriteTransaction::begin(*session_);
  if (!transaction) return database_error(transaction.error());
  if (key.team_id) {
    auto team = load_team(*key.team_id);
    if (!team) return team.error();
    if (!*team) return invalid(fmt::format("'team': no team '{}'", key.team_id->substr(0, 64)));
  }
  if (auto written = write_key(key, true); !written) return written.error();
  if (auto audited = audit(actor, "key.create", key.id, std::nullopt, key_json(key), now_ms); !audited)
    return audited.error();
  if (auto committed = transaction->commit(); !committed) return database_error(committed.error());
  return CreatedKey{std::move(key), std::move(made->key)};
}

StoreResult<KeyRecord> GovernanceStore::modify_key(const std::string& id, std::string_view action,
                                                   const std::string& actor, std::int64_t now_ms,
                                                   const std::function<StoreResult<void>(KeyRecord&)>& change,
                                                   bool audit_records) {
  std::lock_guard lock(mutex_);
  auto transaction = WriteTransaction::begin(*session_);
  if (!transaction) return database_error(transaction.error());
  auto existing = load_key(id);
  if (!existing) return existing.error();
  if (!*existing) return StoreError{FailureKind::not_found, fmt::format("no key '{}'", id.substr(0, 64))};
  KeyRecord key = **existing;
  if (auto changed = change(key); !changed) return changed.error();
  if (key.team_id && key.team_id != (*existing)->team_id) {
    auto team = load_team(*key.team_id);
    if (!team) return team.error();
    if (!*team) return invalid(fmt::format("'team': no team '{}'", key.team_id->substr(0, 64)));
  }
  key.updated_at_ms = now_ms;
  if (auto written = write_key(key, false); !written) return written.error();
  const auto record = [&](const KeyRecord& k) { return audit_records ? std::optional(key_json(k)) : std::nullopt; };
  if (auto audited = audit(actor, action, id, record(**existing), record(key), now_ms); !audited)
    return audited.error();
  if (auto notified = notify_change(*session_, key_scope(id)); !notified) return notified.error();
  if (auto committed = transaction->commit(); !committed) return database_error(committed.error());
  return key;
}

StoreResult<KeyRecord> GovernanceStore::update_key(const std::string& id, const Fields& fields,
                                                   const std::string& actor, std::int64_t now_ms) {
  return modify_key(id, "key.update", actor, now_ms, [&](KeyRecord& key) -> StoreResult<void> {
    if (auto applied = apply_common(fields, key.name, key.models, key.expires_at_ms, key.limits); !applied)
      return applied.error();
    fields.team.apply(key.team_id);
    return {};
  });
}

StoreResult<KeyRecord> GovernanceStore::revoke_key(const std::string& id, const std::string& actor,
                                                   std::int64_t now_ms) {
  return modify_key(id, "key.revoke", actor, now_ms, [&](KeyRecord& key) -> StoreResult<void> {
    if (!key.revoked_at_ms) key.revoked_at_ms = now_ms;
    return {};
  });
}

StoreResult<CreatedKey> GovernanceStore::rotate_key(const std::string& id, const std::string& actor,
                                                    std::int64_t now_ms) {
  std::string whole_key;
  // The audit row says a rotation happened; neither secret nor hash goes into it.
  auto rotated = modify_key(
      id, "key.rotate", actor, now_ms,
      [&](KeyRecord& key) -> StoreResult<void> {
        if (key.revoked_at_ms) return invalid(fmt::format("key '{}' is revoked; create a new one", id));
        auto made = generate_virtual_key(id);
        if (!made) return database_error(made.error());
        key.secret_sha256 = made->secret_sha256;
        whole_key = std::move(made->key);
        return {};
      },
      false);
  if (!rotated) return rotated.error();
  return CreatedKey{std::move(*rotated), std::move(whole_key)};
}

StoreResult<std::vector<KeyRecord>> GovernanceStore::list_keys() {
  std::lock_guard lock(mutex_);
  auto rows = session_->run(fmt::format("SELECT {} FROM gov_keys ORDER BY created_at_ms, id", kKeyColumns));
  if (!rows) return database_error(rows.error());
  std::vector<KeyRecord> keys;
  for (const SqlRow& row : *rows) keys.push_back(read_key(row));
  return keys;
}

StoreResult<KeyRecord> GovernanceStore::find_key(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto key = load_key(id);
  if (!key) return key.error();
  if (!*key) return StoreError{FailureKind::not_found, fmt::format("no key '{}'", id.substr(0, 64))};
  return std::move(**key);
}

}  // namespace turnout::governance
