#pragma once
// The JSON body of an admin create or update (POST /admin/v1/keys, PATCH .../{id}, the
// same for teams) as Fields, with the same names the answers use (docs/REFERENCE.md
// "Admin API"). On an update, null removes an optional field; on a create it is the
// same as leaving the field out.
#include "common/result.hpp"
#include "governance/records.hpp"

#include <string>
#include <string_view>

namespace turnout::governance {

struct FieldError {
  std::string param;  // the field at fault; "" when the body as a whole is
  std::string message;
};

enum class FieldsFor { key, team };

Result<Fields, FieldError> parse_fields_json(std::string_view body, FieldsFor what, bool update);

}  // namespace turnout::governance
