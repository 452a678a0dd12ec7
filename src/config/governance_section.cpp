// The `governance:` section (docs/REFERENCE.md "Governance").
#include "config/section_readers.hpp"
#include "pricing/pricing.hpp"

#include <cstdint>

namespace turnout::config {

void read_governance(DocumentReader& reader, const YAML::Node& node, GovernanceConfig& governance) {
  if (!reader.expect_map(node, "governance")) return;
  reader.reject_unknown_keys(node, "governance",
                             {"admin_key", "on_insufficient", "mode", "allow_unpriced", "key_cache_ttl_s", "lease_slice_usd",
                              "lease_ttl_s", "lease_idle_s"});
  if (const auto n = node["admin_key"]) assign(governance.admin_key, reader.string(n, "governance.admin_key"));
  if (const auto n = node["on_insufficient"]) {
    if (auto choice = reader.choice(n, "governance.on_insufficient", {"reject", "clamp"})) {
      governance.on_insufficient = *choice == "clamp" ? OnInsufficient::clamp : OnInsufficient::reject;
    }
  }
  if (const auto n = node["mode"]) {
    if (auto choice = reader.choice(n, "governance.mode", {"strict", "lease"})) {
      governance.mode = *choice == "lease" ? GovernanceMode::lease : GovernanceMode::strict;
    }
  }
  if (const auto n = node["allow_unpriced"]) assign(governance.allow_unpriced, reader.boolean(n, "governance.allow_unpriced"));
  if (const auto n = node["key_cache_ttl_s"])
    assign(governance.key_cache_ttl_s, reader.seconds(n, "governance.key_cache_ttl_s", true));
  if (const auto n = node["lease_slice_usd"]) {
    if (const auto text = reader.string(n, "governance.lease_slice_usd")) {
      // A USD amount with at most 9 decimals is a price per 1,000 tokens read as pico per
      // token, times 1,000: the same exact decimal reading, no floating point.
      auto per_token = pricing::parse_price_per_1k(*text);
      if (per_token && *per_token > 0 && *per_token <= INT64_MAX / 1000) {
        governance.lease_slice_pico = *per_token * 1000;
      } else {
        reader.fail(n, "governance.lease_slice_usd",
                    "expected an amount of US dollars above 0 with at most 9 decimals, such as 0.5");
      }
    }
  }
  if (const auto n = node["lease_ttl_s"]) assign(governance.lease_ttl_s, reader.seconds(n, "governance.lease_ttl_s", false));
  if (const auto n = node["lease_idle_s"])
    assign(governance.lease_idle_s, reader.seconds(n, "governance.lease_idle_s", false));
}

}  // namespace turnout::config
