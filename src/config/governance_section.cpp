// The `governance:` section (docs/REFERENCE.md "Governance").
#include "config/section_readers.hpp"

namespace turnout::config {

void read_governance(DocumentReader& reader, const YAML::Node& node, GovernanceConfig& governance) {
  if (!reader.expect_map(node, "governance")) return;
  reader.reject_unknown_keys(node, "governance",
                             {"admin_key", "on_insufficient", "mode", "allow_unpriced", "key_cache_ttl_s"});
  if (const auto n = node["admin_key"]) assign(governance.admin_key, reader.string(n, "governance.admin_key"));
  if (const auto n = node["on_insufficient"]) {
    if (auto choice = reader.choice(n, "governance.on_insufficient", {"reject", "clamp"})) {
      governance.on_insufficient = *choice == "clamp" ? OnInsufficient::clamp : OnInsufficient::reject;
    }
  }
  if (const auto n = node["mode"]) {
    if (auto choice = reader.choice(n, "governance.mode", {"strict", "lease"})) {
      if (*choice == "lease") reader.fail(n, "governance.mode", "'lease' is not supported yet; use 'strict'");
      governance.mode = GovernanceMode::strict;
    }
  }
  if (const auto n = node["allow_unpriced"]) assign(governance.allow_unpriced, reader.boolean(n, "governance.allow_unpriced"));
  if (const auto n = node["key_cache_ttl_s"])
    assign(governance.key_cache_ttl_s, reader.seconds(n, "governance.key_cache_ttl_s", true));
}

}  // namespace turnout::config
