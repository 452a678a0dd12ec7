#include "ledger/ledger_url.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace turnout::ledger {
namespace {

// RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), lower-cased.
std::string lower_scheme(std::string_view url) {
  const std::size_t colon = url.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return {};
  }
  const std::string_view scheme = url.substr(0, colon);
  const auto is_scheme_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '-' || c == '.';
  };
  if (std::isalpha(static_cast<unsigned char>(scheme.front())) == 0 ||
      !std::all_of(scheme.begin(), scheme.end(), is_scheme_char)) {
    return {};
  }
  std::string lowered(scheme);
  std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                 [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
  return lowered;
}

constexpr std::string_view kExpected = "expected sqlite:PATH, sqlite::memory: or postgresql://...";

}  // namespace

std::string redact_url(std::string_view url) {
  std::string_view without_query = url.substr(0, url.find_first_of("?#"));
  const std::size_t authority_start = without_query.find("://");
  if (authority_start == std::string_view::npos) {
    return std::string(without_query);
  }
  const std::size_t host_start = authority_start + 3;
  const std::size_t authority_end = std::min(without_query.find('/', host_start), without_query.size());
  const std::string_view authority = without_query.substr(host_start, authority_end - host_start);
  const std::size_t at = authority.rfind('@');
  if (at == std::string_view::npos) {
    return std::string(without_query);
  }
  return fmt::format("{}{}", without_query.substr(0, host_start), without_query.substr(host_start + at + 1));
}

Result<LedgerUrl> parse_ledger_url(std::string_view url) {
  const std::string scheme = lower_scheme(url);
  if (scheme.empty()) {
    return make_error(fmt::format("ledger url '{}' has no scheme; {}", redact_url(url), kExpected));
  }
  const std::string_view rest = url.substr(scheme.size() + 1);
  if (scheme == "sqlite") {
    if (rest == ":memory:") {
      return LedgerUrl{LedgerKind::sqlite_memory, {}};
    }
    if (rest.empty()) {
      return make_error(fmt::format("ledger url 'sqlite:' has no path; {}", kExpected));
    }
    return LedgerUrl{LedgerKind::sqlite_file, std::string(rest)};
  }
  if (scheme == "postgresql" || scheme == "postgres") {
    return LedgerUrl{LedgerKind::postgresql, std::string(url)};
  }
  // Only the scheme is echoed: the rest of an unknown URL may hold credentials in a
  // shape redact_url does not know.
  return make_error(fmt::format("unsupported ledger url scheme '{}'; {}", scheme, kExpected));
}

}  // namespace turnout::ledger
