#pragma once
// Forward stage helper: rewriting the top-level members of a request body the parse stage
// has already validated (the model the call was routed to, the usage request of a stream),
// copying everything else byte for byte.
#include <initializer_list>
#include <string>
#include <string_view>

namespace turnout::server {

// Rewrites the top-level members of a valid JSON object: drops every member whose
// (unescaped) key is in `drop`, then appends `extra` (already-serialised `"k":v` pairs,
// comma-separated). Every other member is copied byte for byte, its first copy only: a
// second copy of a key (however escaped) is never forwarded, whatever the caller checked.
std::string rewrite_top_level(std::string_view json, std::initializer_list<std::string_view> drop,
                              std::string_view extra);

}  // namespace turnout::server
