#pragma once
// PostgreSQL storage for the ledger, so several gateway instances share one ledger and
// one /stats. Writes only ever INSERT (each batch in one transaction, keys deduplicated by
// ON CONFLICT DO NOTHING), so concurrent instances never wait on each other's rows and
// cannot deadlock; every figure is aggregated from the rows at read time. One connection
// belongs to the writer thread; /stats borrows connections from a small pool. A broken
// connection is replaced on the next use, so the ledger recovers by itself once the
// server is back.
#include "ledger/backend.hpp"
#include "ledger/postgres/connection.hpp"

#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace turnout::ledger {

class PostgresBackend final : public Backend {
 public:
  // Connects and brings the schema to the newest version. Errors never contain the password.
  static Result<std::unique_ptr<PostgresBackend>> open(std::string_view url);

  Result<void> write_batch(std::span<const KeyedRecord> records) override;
  Result<std::uint64_t> prune_before(double cutoff, std::uint64_t limit, bool fold_first) override;
  Result<void> prune_second_rollups(double cutoff) override;
  Result<StatsReport> stats(const StatsQuery& query) override;
  Result<SeriesReport> series(const SeriesQuery& query) override;
  Result<std::string> installation_secret(const std::string& candidate) override;

 private:
  explicit PostgresBackend(pg::ConnectionTarget target) : target_(std::move(target)) {}

  Result<pg::Connection> connect() const;
  Result<void> insert_all(pg::Connection& connection, std::span<const KeyedRecord> records);
  // Takes an idle reader, or connects a new one; `reused` says which.
  Result<pg::Connection> acquire_reader(bool& reused);
  void release_reader(pg::Connection reader);
  // Runs one read query on a pooled reader (stats, series), once more on a fresh
  // connection when a pooled one turns out to have been cut.
  template <class Report, class Query>
  Result<Report> read(turnout::Result<Report> (*run)(pg::Connection&, const Query&), const Query& query);

  const pg::ConnectionTarget target_;
  std::optional<pg::Connection> writer_;  // the writer thread's; empty after a failure
  std::string copy_buffer_;               // the writer thread's, reused across batches

  std::mutex readers_mutex_;
  std::vector<pg::Connection> idle_readers_;
};

}  // namespace turnout::ledger
