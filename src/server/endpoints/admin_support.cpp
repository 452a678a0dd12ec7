#include "server/endpoints/admin_support.hpp"

#include "server/openai_error.hpp"

namespace turnout::server::endpoints {
namespace {

// The store names the field at fault first, in quotes ("'budget_usd' must not be
// negative"): that is the error's param.
std::string quoted_field(std::string_view message) {
  if (!message.starts_with('\'')) return {};
  const std::size_t end = message.find('\'', 1);
  if (end == std::string_view::npos || end > 64) return {};
  return std::string(message.substr(1, end - 1));
}

}  // namespace

std::optional<HttpResponse> read_admin_fields(const Call& call, governance::FieldsFor what, bool update,
                                              governance::Fields& fields) {
  auto parsed = governance::parse_fields_json(call.request.body(), what, update);
  if (parsed) {
    fields = std::move(*parsed);
    return std::nullopt;
  }
  return error_response(ApiError{400, parsed.error().message, "invalid_request_error", parsed.error().param,
                                 parsed.error().param.empty() ? "invalid_json" : "invalid_value"},
                        call.request.version());
}

HttpResponse admin_store_missing(unsigned version) {
  return error_response(ApiError{503,
                                 "Governance needs a ledger database (ledger.url); this gateway runs without one "
                                 "(sqlite::memory:).",
                                 "server_error", "", "governance_unavailable"},
                        version);
}

HttpResponse admin_answer(governance::StoreResult<std::string> result, http::status ok, unsigned version) {
  if (result) return json_response(ok, version, std::move(*result));
  const governance::StoreError& error = result.error();
  switch (error.kind) {
    case governance::FailureKind::invalid:
      return error_response(ApiError{400, error.message, "invalid_request_error", quoted_field(error.message),
                                     "invalid_value"},
                            version);
    case governance::FailureKind::not_found:
      return error_response(ApiError{404, error.message, "invalid_request_error", "", "not_found"}, version);
    case governance::FailureKind::conflict:
      return error_response(ApiError{409, error.message, "invalid_request_error", "", "conflict"}, version);
    case governance::FailureKind::database:
    case governance::FailureKind::commit_unknown:
      break;
  }
  // The database's own message may name the connection (and its password): not echoed.
  return error_response(ApiError{503, "The ledger database is unreachable; the change was not made.", "server_error",
                                 "", "governance_unavailable"},
                        version);
}

}  // namespace turnout::server::endpoints
