#pragma once
// The access log: one JSON line per request on stdout (docs/REFERENCE.md §1.1).
#include "server/services.hpp"

namespace turnout::server {

void log_access(const GatewayOptions& options, const Exchange& exchange, unsigned status);

}  // namespace turnout::server
