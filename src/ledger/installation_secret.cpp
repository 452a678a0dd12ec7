#include "ledger/installation_secret.hpp"

#include <fmt/format.h>
#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace turnout::ledger {

Result<std::string> new_installation_secret() {
  std::array<unsigned char, 32> bytes{};
  std::size_t filled = 0;
  while (filled < bytes.size()) {
    const ssize_t got = getrandom(bytes.data() + filled, bytes.size() - filled, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return make_error(fmt::format("cannot create the installation secret: getrandom: {}", std::strerror(errno)));
    }
    filled += static_cast<std::size_t>(got);
  }
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (const unsigned char byte : bytes) hex += fmt::format("{:02x}", byte);
  // in_place: Error is constructible from a string too, so plain conversion is ambiguous.
  return Result<std::string>(boost::system::in_place_value, std::move(hex));
}

}  // namespace turnout::ledger
