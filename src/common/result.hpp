#pragma once
// Errors as values at module boundaries: every stage returns Result<T> (a value or an
// Error with a human-readable message) instead of throwing across module lines.
#include <boost/system/result.hpp>
#include <boost/throw_exception.hpp>

#include <stdexcept>
#include <string>
#include <utility>

namespace turnout {

struct Error {
  std::string message;
};

// Required by boost::system::result<T, Error>::value() when it holds an error.
[[noreturn]] inline void throw_exception_from_error(const Error& e, const boost::source_location& loc) {
  boost::throw_exception(std::runtime_error(e.message), loc);
}

template <class T, class E = Error>
using Result = boost::system::result<T, E>;

inline Error make_error(std::string message) { return Error{std::move(message)}; }

}  // namespace turnout
