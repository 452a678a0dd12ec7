#pragma once
// Decoding of PostgreSQL stats rows, shared by the /stats queries (stats.cpp) and the
// /stats/series queries (series.cpp). Internal to the PostgreSQL ledger.
#include "ledger/ledger.hpp"
#include "ledger/postgres/connection.hpp"
#include "ledger/stats_assembly.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

namespace turnout::ledger::pg {

// Reads columns in order, keeping the first error, so row decoding stays flat.
class RowReader {
 public:
  RowReader(const QueryResult& result, int row) : result_(result), row_(row) {}

  std::string text() { return std::string(result_.text(row_, next_++)); }
  std::int64_t integer() { return keep(result_.integer(row_, next_++), std::int64_t{0}); }
  double real() { return keep(result_.real(row_, next_++), 0.0); }
  std::optional<std::int64_t> optional_integer() {
    if (result_.is_null(row_, next_)) {
      ++next_;
      return std::nullopt;
    }
    return integer();
  }
  const std::optional<turnout::Error>& error() const { return error_; }

 private:
  template <class T>
  T keep(turnout::Result<T> value, T fallback) {
    if (value) {
      return *value;
    }
    if (!error_) {
      error_ = value.error();
    }
    return fallback;
  }

  const QueryResult& result_;
  int row_;
  int next_ = 0;
  std::optional<turnout::Error> error_;
};

// The next two columns of a latency histogram row (model, cells) into `totals`.
inline turnout::Result<void> add_histogram(RowReader& read, StatsAccumulator& totals) {
  const std::string model = read.text();
  return totals.add_latency_cells(model, read.text());
}

// The groups, keys and endpoints rows are decoded by read_group, read_key and
// read_endpoint (stats_assembly.hpp) through a RowReader.

}  // namespace turnout::ledger::pg
