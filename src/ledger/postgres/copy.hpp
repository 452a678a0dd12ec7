#pragma once
// Rows in PostgreSQL's COPY text format, for streaming batches into staging tables.
#include "common/utf8.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

namespace turnout::ledger::pg {

// COPY text format. Text is made storable on the way: an invalid UTF-8 sequence or a NUL
// byte (which a client can put in a request id) becomes U+FFFD instead of failing the
// whole batch over and over; backslash and the row/column separators are escaped.
class CopyRowWriter {
 public:
  explicit CopyRowWriter(std::string& out) : out_(out) {}

  void text(std::string_view value) {
    separate();
    for (std::size_t i = 0; i < value.size();) {
      const auto [length, valid] = next_utf8_sequence(value, i);
      if (!valid || value[i] == '\0') {
        out_ += kReplacementCharacter;
      } else if (length == 1) {
        escaped(value[i]);
      } else {
        out_.append(value.substr(i, length));
      }
      i += length;
    }
  }
  void integer(std::int64_t value) {
    separate();
    fmt::format_to(std::back_inserter(out_), "{}", value);
  }
  void boolean(bool value) {
    separate();
    out_ += value ? 't' : 'f';
  }
  // Shortest round-trip form; PostgreSQL reads it back to the same double.
  void real(double value) {
    separate();
    if (std::isnan(value)) {
      out_ += "NaN";
    } else if (std::isinf(value)) {
      out_ += value > 0 ? "Infinity" : "-Infinity";
    } else {
      fmt::format_to(std::back_inserter(out_), "{}", value);
    }
  }
  void null() {
    separate();
    out_ += "\\N";
  }
  void end_row() {
    out_ += '\n';
    first_ = true;
  }

 private:
  void separate() {
    if (!first_) {
      out_ += '\t';
    }
    first_ = false;
  }
  void escaped(char c) {
    switch (c) {
      case '\\': out_ += "\\\\"; break;
      case '\n': out_ += "\\n"; break;
      case '\r': out_ += "\\r"; break;
      case '\t': out_ += "\\t"; break;
      default: out_ += c;
    }
  }

  std::string& out_;
  bool first_ = true;
};

}  // namespace turnout::ledger::pg
