#include "governance/admin_operations.hpp"

#include "governance/record_json.hpp"

namespace turnout::governance {
namespace {

template <class Record, class Render>
std::string json_array(const std::vector<Record>& records, Render render) {
  std::string out = "[";
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (i > 0) out += ',';
    out += render(records[i]);
  }
  return out + "]";
}

StoreResult<std::string> key_with_usage(GovernanceStore& store, const KeyRecord& key, std::int64_t now_ms,
                                        const std::string* whole_key = nullptr) {
  auto usage = store.usage(key_scope(key.id), key.limits, now_ms);
  if (!usage) return usage.error();
  return key_json(key, &*usage, whole_key);
}

StoreResult<std::string> team_with_usage(GovernanceStore& store, const TeamRecord& team, std::int64_t now_ms) {
  auto usage = store.usage(team_scope(team.id), team.limits, now_ms);
  if (!usage) return usage.error();
  return team_json(team, &*usage);
}

}  // namespace

StoreResult<std::string> create_key(GovernanceStore& store, const Fields& fields, const std::string& actor,
                                    std::int64_t now_ms) {
  auto created = store.create_key(fields, actor, now_ms);
  if (!created) return created.error();
  return key_with_usage(store, created->record, now_ms, &created->key);
}

StoreResult<std::string> list_keys(GovernanceStore& store) {
  auto listed = store.list_keys();
  if (!listed) return listed.error();
  return json_array(*listed, [](const KeyRecord& key) { return key_json(key); });
}

StoreResult<std::string> show_key(GovernanceStore& store, const std::string& id, std::int64_t now_ms) {
  auto key = store.find_key(id);
  if (!key) return key.error();
  return key_with_usage(store, *key, now_ms);
}

StoreResult<std::string> update_key(GovernanceStore& store, const std::string& id, const Fields& fields,
                                    const std::string& actor, std::int64_t now_ms) {
  auto key = store.update_key(id, fields, actor, now_ms);
  if (!key) return key.error();
  return key_with_usage(store, *key, now_ms);
}

StoreResult<std::string> revoke_key(GovernanceStore& store, const std::string& id, const std::string& actor,
                                    std::int64_t now_ms) {
  auto key = store.revoke_key(id, actor, now_ms);
  if (!key) return key.error();
  return key_json(*key);
}

StoreResult<std::string> rotate_key(GovernanceStore& store, const std::string& id, const std::string& actor,
                                    std::int64_t now_ms) {
  auto rotated = store.rotate_key(id, actor, now_ms);
  if (!rotated) return rotated.error();
  return key_json(rotated->record, nullptr, &rotated->key);
}

StoreResult<std::string> create_team(GovernanceStore& store, const Fields& fields, const std::string& actor,
                                     std::int64_t now_ms) {
  if (!fields.name) return StoreError{FailureKind::invalid, "'name' is required (it becomes the team's id)"};
  auto team = store.create_team(*fields.name, fields, actor, now_ms);
  if (!team) return team.error();
  return team_with_usage(store, *team, now_ms);
}

StoreResult<std::string> list_teams(GovernanceStore& store) {
  auto listed = store.list_teams();
  if (!listed) return listed.error();
  return json_array(*listed, [](const TeamRecord& team) { return team_json(team); });
}

StoreResult<std::string> show_team(GovernanceStore& store, const std::string& id, std::int64_t now_ms) {
  auto team = store.find_team(id);
  if (!team) return team.error();
  return team_with_usage(store, *team, now_ms);
}

StoreResult<std::string> update_team(GovernanceStore& store, const std::string& id, const Fields& fields,
                                     const std::string& actor, std::int64_t now_ms) {
  auto team = store.update_team(id, fields, actor, now_ms);
  if (!team) return team.error();
  return team_with_usage(store, *team, now_ms);
}

}  // namespace turnout::governance
