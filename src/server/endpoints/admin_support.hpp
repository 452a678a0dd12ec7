#pragma once
// What the admin endpoints (admin_keys.cpp, admin_teams.cpp) share: reading a body into
// governance::Fields, running one governance operation on the blocking pool, and the
// answer in OpenAI's error shape when it fails. The gateway has already checked the
// admin credential (route_table.hpp: Access::admin).
#include "governance/admin_operations.hpp"
#include "governance/fields_json.hpp"
#include "server/endpoints/blocking.hpp"

#include <optional>
#include <string_view>

namespace turnout::server::endpoints {

// Who the audit trail names for every write through the admin API.
inline constexpr std::string_view kAdminActor = "admin";

// The request's body as fields into `fields`, or the 400 naming the field at fault.
std::optional<HttpResponse> read_admin_fields(const Call& call, governance::FieldsFor what, bool update,
                                              governance::Fields& fields);

// 503 when the ledger cannot host governance (sqlite::memory:).
HttpResponse admin_store_missing(unsigned version);

// The operation's JSON with `ok`, or its failure: 400 naming the field, 404, 409, 503.
HttpResponse admin_answer(governance::StoreResult<std::string> result, http::status ok, unsigned version);

// Runs `operation(store, now_ms)` on the blocking pool and answers it. `operation` must
// capture only pointers and references (on_blocking_pool's GCC 12 note).
template <class Operation>
boost::asio::awaitable<std::optional<HttpResponse>> run_admin(Services& services, const Call& call, http::status ok,
                                                              Operation operation) {
  const unsigned version = call.request.version();
  governance::GovernanceStore* store = services.options.governance_store;
  if (store == nullptr) co_return admin_store_missing(version);
  auto work = [store, operation] { return operation(*store, admit::system_now_ms()); };
  auto result = co_await on_blocking_pool<governance::StoreResult<std::string>>(services, std::move(work));
  co_return admin_answer(std::move(result), ok, version);
}

}  // namespace turnout::server::endpoints
