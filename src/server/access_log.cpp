#include "server/access_log.hpp"

#include "common/clock.hpp"
#include "common/json_text.hpp"

#include <fmt/format.h>
#include <spdlog/logger.h>

#include <iterator>

namespace turnout::server {

void log_access(const GatewayOptions& options, const Exchange& ex, unsigned status) {
  if (!options.access_log) return;
  // One allocation: the line is reserved at a size most lines fit, and numbers are
  // formatted into it in place (fmt::format made a string each; issue 16).
  std::string line;
  line.reserve(384);
  line += R"({"ts":)";
  auto out = std::back_inserter(line);
  fmt::format_to(out, "{:.6f}", unix_now());
  line += R"(,"request_id":)";
  append_json_string(line, ex.request_id);
  line += R"(,"method":)";
  append_json_string(line, ex.method);
  line += R"(,"path":)";
  append_json_string(line, ex.path);
  fmt::format_to(out, R"(,"status":{},"latency_ms":{:.3f})", status, ms_between(ex.start, Clock::now()));
  if (!ex.key_id.empty()) {
    line += R"(,"key_id":)";
    append_json_string(line, ex.key_id);
  }
  if (!ex.model.empty()) {
    line += R"(,"model":)";
    append_json_string(line, ex.model);
    line += R"(,"route":)";
    append_json_string(line, ex.route);
    fmt::format_to(out, R"(,"prompt_tokens":{},"completion_tokens":{})", ex.prompt_tokens, ex.completion_tokens);
  }
  if (ex.is_chat) {
    line += R"(,"cost_usd":)";
    line += ex.cost ? pricing::format_usd(*ex.cost) : "null";
    fmt::format_to(out, R"(,"attempts":{})", ex.attempts);
  }
  if (!ex.error_type.empty()) {
    line += R"(,"error":)";
    append_json_string(line, ex.error_type);
  }
  line.push_back('}');
  options.access_log->info(line);
}

}  // namespace turnout::server
