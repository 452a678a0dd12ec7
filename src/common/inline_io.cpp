#include "common/inline_io.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cerrno>

namespace turnout {

std::size_t send_now(boost::asio::ip::tcp::socket& socket, std::span<const boost::asio::const_buffer> buffers,
                     boost::system::error_code& error) {
  error.clear();
  std::array<iovec, kSendNowMaxPieces> pieces{};
  std::size_t count = 0;
  for (const auto& buffer : buffers) {
    if (count == kSendNowMaxPieces) break;
    if (buffer.size() == 0) continue;
    pieces[count].iov_base = const_cast<void*>(buffer.data());  // sendmsg does not write to it
    pieces[count].iov_len = buffer.size();
    ++count;
  }
  if (count == 0) return 0;
  msghdr message{};
  message.msg_iov = pieces.data();
  message.msg_iovlen = count;
  for (;;) {
    const ssize_t sent = ::sendmsg(socket.native_handle(), &message, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent >= 0) return static_cast<std::size_t>(sent);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    error.assign(errno, boost::asio::error::get_system_category());
    return 0;
  }
}

}  // namespace turnout
