#pragma once
// One connection of the mock upstream (mock_server.hpp): reads requests in a keep-alive
// loop and answers each one. Internal to the mock: the transport and dispatch are in
// mock_connection.cpp, the simulated provider calls (chat, Responses, embeddings, with
// their faults) in mock_calls.cpp, the control API (/_mock/...) in mock_control.cpp.
#include "common/result.hpp"
#include "mock/chat_call.hpp"
#include "mock/chat_reply.hpp"
#include "mock/mock_settings.hpp"
#include "mock/mock_state.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::mock {

inline constexpr auto mock_nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);

// What the connection does after a request has been answered.
enum class Next { keep_alive, close, gone };

class Connection {
 public:
  using tcp = boost::asio::ip::tcp;
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  using Response = boost::beast::http::response<boost::beast::http::string_body>;

  Connection(tcp::socket socket, MockState& state, std::size_t max_body_bytes)
      : socket_(std::move(socket)), state_(state), max_body_bytes_(max_body_bytes), random_(std::random_device{}()) {}
  boost::asio::awaitable<void> serve();

 private:
  // Runs the handler; an exception before any byte of the answer was sent becomes a 500.
  boost::asio::awaitable<Next> answer(Request& request);
  boost::asio::awaitable<Next> dispatch(Request& request);
  boost::asio::awaitable<Next> send_invalid_url(const Request& request, std::string_view path);
  boost::asio::awaitable<Next> chat(const Request& request, std::string_view deployment);
  // Answered through the chat machinery (responses_reply.hpp), with the same settings and
  // faults; a stream ends without response.completed when a fault cuts it.
  boost::asio::awaitable<Next> responses(const Request& request);
  // The same settings and faults as chat: a fault that strikes "after K chunks" strikes
  // before any byte here, as for a buffered chat answer.
  boost::asio::awaitable<Next> embeddings(const Request& request);
  boost::asio::awaitable<Next> reject_chat(const Request& request, const InvalidRequest& error);
  boost::asio::awaitable<Next> send_failure(const Request& request, const FaultSettings& faults);
  boost::asio::awaitable<Next> stream(const Request& request, const ChatCall& call, const GeneratedCompletion& completion,
                              const ReplySettings& reply, const FaultSettings& faults, std::string_view request_id);
  boost::asio::awaitable<Next> send_stream(const Request& request, const std::vector<StreamEvent>& events,
                                   std::uint32_t chunk_delay_ms, const FaultSettings& faults,
                                   std::string_view request_id);
  boost::asio::awaitable<MockState::StreamEnd> send_events(const std::vector<StreamEvent>& events,
                                                   std::uint32_t chunk_delay_ms, const FaultSettings& faults);
  boost::asio::awaitable<Next> control(const Request& request, std::string_view path);
  Result<MockSettings> settings_from_request(const Request& request) const;
  boost::asio::awaitable<Next> send_settings(const Request& request);
  Response make_response(const Request& request, boost::beast::http::status status, std::string body,
                         std::string_view content_type = "application/json", std::string_view request_id = {});
  boost::asio::awaitable<Next> send(const Request& request, boost::beast::http::status status, std::string body,
                            std::string_view content_type = "application/json", std::string_view request_id = {});
  boost::asio::awaitable<Next> write(Response response);
  // A request Beast could not parse (bad syntax, oversized header): say so, then close.
  boost::asio::awaitable<void> reject_unreadable();
  // The rest of the body is still unread, so the connection cannot be reused.
  boost::asio::awaitable<void> reject_oversized(const Request& request);
  // Keeps the connection open without answering until the client gives up.
  boost::asio::awaitable<Next> never_answer();
  // An abrupt close: SO_LINGER 0 makes close() send a TCP RST instead of a FIN.
  Next reset_connection();
  boost::asio::awaitable<void> sleep(std::chrono::milliseconds duration);
  tcp::socket socket_;
  MockState& state_;
  const std::size_t max_body_bytes_;
  boost::beast::flat_buffer buffer_;
  std::mt19937_64 random_;
  bool response_started_ = false;
};

}  // namespace turnout::mock
