#include "upstream/connection.hpp"

#include <poll.h>

namespace turnout::upstream::detail {
namespace {

std::variant<PlainStream, TlsStream> make_stream(const boost::asio::any_io_executor& executor,
                                                 boost::asio::ssl::context* tls) {
  if (tls) return std::variant<PlainStream, TlsStream>(std::in_place_type<TlsStream>, executor, *tls);
  return std::variant<PlainStream, TlsStream>(std::in_place_type<PlainStream>, executor);
}

// Beast reads max(512, the buffer's free room) bytes at a time, and an empty flat_buffer
// stays at the 512 bytes its first read made it: a response of a few hundred bytes more took
// two reads each time (issue 16), a 16 KB one thirty-two. With this room a typical response
// comes in one read.
constexpr std::size_t kReadRoom = 16 * 1024;

}  // namespace

Connection::Connection(boost::asio::any_io_executor executor, const Endpoint& endpoint,
                       boost::asio::ssl::context* tls)
    : key_{endpoint.tls, endpoint.host, endpoint.port}, stream_(make_stream(executor, tls)), deadline_(tcp()) {
  buffer_.reserve(kReadRoom);
}

boost::beast::tcp_stream& Connection::tcp() {
  return std::visit([](auto& stream) -> boost::beast::tcp_stream& {
    return boost::beast::get_lowest_layer(stream);
  }, stream_);
}

bool Connection::peer_closed_while_idle() {
  auto& socket = tcp().socket();
  if (!socket.is_open()) return true;
  pollfd descriptor{socket.native_handle(), POLLIN, 0};
  const int ready = ::poll(&descriptor, 1, 0);
  return ready != 0;  // readable, hung up, or poll itself failed
}

void Connection::close() {
  boost::system::error_code ignored;
  tcp().socket().close(ignored);
}

std::unique_ptr<Connection> ConnectionPool::take(const Endpoint& endpoint, Clock::time_point now) {
  const auto found = idle_.find(endpoint);
  if (found == idle_.end()) return nullptr;
  auto& idle = found->second;
  drop_expired(idle, now);
  while (!idle.empty()) {
    auto connection = std::move(idle.back());
    idle.pop_back();
    const bool probe = now - connection->idle_since > limits_.probe_after_idle;
    if (!probe || !connection->peer_closed_while_idle()) return connection;
  }
  return nullptr;
}

void ConnectionPool::give_back(std::unique_ptr<Connection> connection, Clock::time_point now) {
  connection->idle_since = now;
  connection->reused = true;
  auto found = idle_.find(connection->key());
  if (found == idle_.end()) found = idle_.emplace(connection->key(), IdleList{}).first;
  auto& idle = found->second;
  drop_expired(idle, now);
  if (idle.size() >= limits_.max_idle_per_upstream) idle.pop_front();  // destructor closes
  idle.push_back(std::move(connection));
}

void ConnectionPool::close_all() { idle_.clear(); }

std::size_t ConnectionPool::idle_count() const {
  std::size_t count = 0;
  for (const auto& entry : idle_) count += entry.second.size();
  return count;
}

void ConnectionPool::drop_expired(IdleList& idle, Clock::time_point now) const {
  while (!idle.empty() && now - idle.front()->idle_since > limits_.max_idle_age) idle.pop_front();
}

}  // namespace turnout::upstream::detail
