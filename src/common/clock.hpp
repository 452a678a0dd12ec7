#pragma once
// Wall-clock time as the ledger stores it: unix seconds, fractional.
#include <chrono>

namespace turnout {

inline double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace turnout
