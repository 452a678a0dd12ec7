#include "governance/change_listener.hpp"

#include "ledger/ledger_url.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <chrono>
#include <memory>

namespace turnout::governance {
namespace {

using namespace std::chrono_literals;

constexpr auto kPollInterval = 100ms;  // how soon a stop is noticed
constexpr auto kReconnectWait = 1s;
constexpr std::size_t kMaxPayloadBytes = 200;  // a scope is far shorter; longer is not ours

struct Finish {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using Conn = std::unique_ptr<PGconn, Finish>;

// Connected and LISTENing, or null. libpq's messages may quote the URL, so none is kept.
Conn listen_on(const std::string& conninfo) {
  const char* keywords[] = {"dbname", "application_name", "connect_timeout", nullptr};
  const char* values[] = {conninfo.c_str(), "turnout-governance-listener", "5", nullptr};
  Conn conn(PQconnectdbParams(keywords, values, 1));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) return nullptr;
  PGresult* result = PQexec(conn.get(), (std::string("LISTEN ") + kChangeChannel).c_str());
  const bool ok = result != nullptr && PQresultStatus(result) == PGRES_COMMAND_OK;
  PQclear(result);
  return ok ? std::move(conn) : nullptr;
}

// Sleeps up to `wait` unless a stop is requested first.
void pause(const std::stop_token& stop, std::chrono::milliseconds wait) {
  for (auto slept = 0ms; slept < wait && !stop.stop_requested(); slept += kPollInterval)
    std::this_thread::sleep_for(kPollInterval);
}

}  // namespace

Result<std::unique_ptr<ChangeListener>> ChangeListener::start(const std::string& ledger_url, OnChange on_change) {
  auto parsed = ledger::parse_ledger_url(ledger_url);
  if (!parsed) return parsed.error();
  if (parsed->kind != ledger::LedgerKind::postgresql) return std::unique_ptr<ChangeListener>();
  return std::unique_ptr<ChangeListener>(new ChangeListener(parsed->location, std::move(on_change)));
}

ChangeListener::ChangeListener(std::string conninfo, OnChange on_change)
    : conninfo_(std::move(conninfo)),
      on_change_(std::move(on_change)),
      thread_([this](std::stop_token stop) { run(std::move(stop)); }) {}

ChangeListener::~ChangeListener() { thread_.request_stop(); }

void ChangeListener::run(std::stop_token stop) {
  Conn conn;
  while (!stop.stop_requested()) {
    if (!conn) {
      conn = listen_on(conninfo_);
      listening_ = conn != nullptr;
      if (!conn) {
        pause(stop, kReconnectWait);
        continue;
      }
    }
    pollfd socket{PQsocket(conn.get()), POLLIN, 0};
    const int ready = socket.fd < 0 ? -1 : ::poll(&socket, 1, static_cast<int>(kPollInterval.count()));
    if (ready < 0 && errno == EINTR) continue;  // a signal, not a failure
    if (ready < 0 || PQconsumeInput(conn.get()) == 0 || PQstatus(conn.get()) != CONNECTION_OK) {
      conn.reset();  // reopened on the next turn
      listening_ = false;
      continue;
    }
    while (PGnotify* notified = PQnotifies(conn.get())) {
      const std::string_view scope(notified->extra != nullptr ? notified->extra : "");
      if (!scope.empty() && scope.size() <= kMaxPayloadBytes) on_change_(scope);
      PQfreemem(notified);
    }
  }
}

}  // namespace turnout::governance
