#include "ledger/postgres/connection.hpp"

#include "ledger/ledger_url.hpp"

#include <libpq-fe.h>

#include <fmt/format.h>

#include <array>
#include <charconv>

namespace turnout::ledger::pg {
namespace {

// Bounded waits, so a database that vanished from the network is reported (and the
// ledger turns unhealthy) instead of hanging the writer forever: connecting gives up after
// connect_timeout seconds, an established connection is declared dead after about
// keepalives_idle + keepalives_interval * keepalives_count seconds of silence.
constexpr std::array kKeywords{"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                               "keepalives_count", "application_name", "client_encoding"};
constexpr std::array kDefaults{"10", "1", "30", "10", "3", "turnout", "UTF8"};

// The server's NOTICEs ("relation already exists, skipping") would otherwise go to stderr.
void ignore_notice(void* /*unused*/, const char* /*message*/) {}

// The password in a URL's userinfo as written (percent-encoded), for scrubbing libpq's
// parse errors, which may quote pieces of the URL.
std::string_view raw_url_password(std::string_view url) {
  const std::size_t authority = url.find("://");
  if (authority == std::string_view::npos) {
    return {};
  }
  const std::string_view rest = url.substr(authority + 3, url.find_first_of("/?#", authority + 3) - authority - 3);
  const std::size_t at = rest.rfind('@');
  const std::size_t colon = rest.find(':');
  if (at == std::string_view::npos || colon == std::string_view::npos || colon > at) {
    return {};
  }
  return rest.substr(colon + 1, at - colon - 1);
}

std::string trimmed(std::string_view message) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.remove_suffix(1);
  }
  return std::string(message);
}

}  // namespace

std::string scrub(std::string text, std::string_view secret) {
  if (secret.empty()) {
    return text;
  }
  for (std::size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
    text.replace(at, secret.size(), "***");
    at += 3;
  }
  return text;
}

turnout::Result<ConnectionTarget> ConnectionTarget::parse(std::string_view url) {
  ConnectionTarget target{std::string(url), redact_url(url), {}};
  char* parse_error = nullptr;
  PQconninfoOption* options = PQconninfoParse(target.url.c_str(), &parse_error);
  if (options == nullptr) {
    std::string detail = parse_error != nullptr ? trimmed(parse_error) : "out of memory";
    PQfreemem(parse_error);
    return make_error(fmt::format("invalid PostgreSQL ledger url '{}': {}", target.display,
                                  scrub(std::move(detail), raw_url_password(url))));
  }
  for (const PQconninfoOption* option = options; option->keyword != nullptr; ++option) {
    if (std::string_view(option->keyword) == "password" && option->val != nullptr) {
      target.password = option->val;
    }
  }
  PQconninfoFree(options);
  return target;
}

void QueryResult::Clear::operator()(pg_result* result) const { PQclear(result); }

QueryResult::QueryResult(pg_result* result) : result_(result) {}

int QueryResult::rows() const { return PQntuples(result_.get()); }

int QueryResult::columns() const { return PQnfields(result_.get()); }

bool QueryResult::is_null(int row, int column) const { return PQgetisnull(result_.get(), row, column) != 0; }

std::string_view QueryResult::text(int row, int column) const {
  return {PQgetvalue(result_.get(), row, column),
          static_cast<std::size_t>(PQgetlength(result_.get(), row, column))};
}

turnout::Result<std::int64_t> QueryResult::integer(int row, int column) const {
  const std::string_view digits = text(row, column);
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error != std::errc{} || end != digits.data() + digits.size()) {
    return make_error(fmt::format("ledger value '{}' is not a 64-bit integer (sum out of range?)", digits));
  }
  return value;
}

turnout::Result<double> QueryResult::real(int row, int column) const {
  const std::string_view digits = text(row, column);
  double value = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error != std::errc{} || end != digits.data() + digits.size()) {
    return make_error(fmt::format("ledger value '{}' is not a number", digits));
  }
  return value;
}

void Connection::Finish::operator()(pg_conn* conn) const { PQfinish(conn); }

turnout::Result<Connection> Connection::open(const ConnectionTarget& target) {
  static_assert(kKeywords.size() == kDefaults.size());
  // The defaults, then the URL, then the terminating null.
  std::array<const char*, kKeywords.size() + 2> keywords{};
  std::array<const char*, kKeywords.size() + 2> values{};
  for (std::size_t i = 0; i < kDefaults.size(); ++i) {
    keywords[i] = kKeywords[i];
    values[i] = kDefaults[i];
  }
  // Last, expanded: whatever the URL sets overrides the defaults above.
  keywords[kDefaults.size()] = "dbname";
  values[kDefaults.size()] = target.url.c_str();
  Connection connection(PQconnectdbParams(keywords.data(), values.data(), 1), target.password);
  if (!connection.conn_) {
    return make_error(fmt::format("cannot connect to the ledger database '{}': out of memory", target.display));
  }
  if (PQstatus(connection.conn_.get()) != CONNECTION_OK) {
    return connection.error(fmt::format("cannot connect to the ledger database '{}'", target.display),
                            PQerrorMessage(connection.conn_.get()));
  }
  PQsetNoticeProcessor(connection.conn_.get(), ignore_notice, nullptr);
  return connection;
}

turnout::Error Connection::error(std::string_view what, std::string_view detail) const {
  return make_error(scrub(fmt::format("{}: {}", what, trimmed(detail)), password_));
}

turnout::Result<QueryResult> Connection::expect(pg_result* raw, int wanted_status, std::string_view what) {
  QueryResult result(raw);
  if (raw == nullptr) {
    return error(what, PQerrorMessage(conn_.get()));
  }
  if (PQresultStatus(raw) != wanted_status) {
    return error(what, PQresultErrorMessage(raw));
  }
  return result;
}

turnout::Result<void> Connection::exec(std::string_view sql) {
  const std::string statement(sql);
  auto result = expect(PQexec(conn_.get(), statement.c_str()), PGRES_COMMAND_OK, "PostgreSQL command failed");
  if (!result) {
    return result.error();
  }
  return {};
}

turnout::Result<QueryResult> Connection::query(const std::string& sql, std::span<const Param> params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& param : params) {
    values.push_back(param ? param->c_str() : nullptr);
  }
  pg_result* raw = PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                                nullptr, nullptr, 0);
  // Statements that return no rows (INSERT, SET) report COMMAND_OK instead.
  if (raw != nullptr && PQresultStatus(raw) == PGRES_COMMAND_OK) {
    return QueryResult(raw);
  }
  return expect(raw, PGRES_TUPLES_OK, "PostgreSQL query failed");
}

turnout::Result<void> Connection::copy_in(const std::string& copy_sql, std::string_view data) {
  auto started = expect(PQexec(conn_.get(), copy_sql.c_str()), PGRES_COPY_IN, "PostgreSQL COPY failed");
  if (!started) {
    return started.error();
  }
  const bool sent = PQputCopyData(conn_.get(), data.data(), static_cast<int>(data.size())) == 1 &&
                    PQputCopyEnd(conn_.get(), nullptr) == 1;
  // Drain every result: the connection is only usable again once PQgetResult says done.
  Result<void> outcome;
  while (pg_result* raw = PQgetResult(conn_.get())) {
    QueryResult result(raw);
    if (PQresultStatus(raw) != PGRES_COMMAND_OK && outcome) {
      outcome = error("PostgreSQL COPY failed", PQresultErrorMessage(raw));
    }
  }
  if (!sent && outcome) {
    outcome = error("PostgreSQL COPY failed", PQerrorMessage(conn_.get()));
  }
  return outcome;
}

bool Connection::broken() const { return PQstatus(conn_.get()) != CONNECTION_OK; }

turnout::Result<Transaction> Transaction::begin(Connection& connection, std::string_view begin_sql) {
  if (auto begun = connection.exec(begin_sql); !begun) {
    return begun.error();
  }
  return Transaction(connection);
}

Transaction::~Transaction() {
  if (connection_ != nullptr && !connection_->broken()) {
    (void)connection_->exec("ROLLBACK");
  }
}

turnout::Result<void> Transaction::commit() {
  Connection* connection = std::exchange(connection_, nullptr);
  return connection->exec("COMMIT");
}

}  // namespace turnout::ledger::pg
