#include "mock/mock_connection.hpp"

#include "common/clock.hpp"
#include "mock/chat_call.hpp"
#include "mock/chat_reply.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

namespace turnout::mock {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;

namespace {

constexpr auto nothrow = net::as_tuple(net::use_awaitable);
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

struct Target {
  std::string_view path;
  std::string_view query;
};

Target split_target(std::string_view target) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

bool has_query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    if (pair.substr(0, pair.find('=')) == name) return true;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

// Azure OpenAI: /openai/deployments/{deployment}/chat/completions; returns the deployment.
std::optional<std::string_view> azure_deployment(std::string_view path) {
  static constexpr std::string_view prefix = "/openai/deployments/";
  static constexpr std::string_view suffix = "/chat/completions";
  if (!path.starts_with(prefix) || !path.ends_with(suffix)) return std::nullopt;
  const auto deployment = path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
  if (deployment.empty() || deployment.find('/') != std::string_view::npos) return std::nullopt;
  return deployment;
}

bool is_chat_path(std::string_view path) { return path == "/v1/chat/completions" || path == "/chat/completions"; }
bool is_responses_path(std::string_view path) { return path == "/v1/responses" || path == "/responses"; }
bool is_embeddings_path(std::string_view path) { return path == "/v1/embeddings" || path == "/embeddings"; }
bool is_models_path(std::string_view path) { return path == "/v1/models" || path == "/models"; }

// A request Beast could not parse, as opposed to a client that went away.
bool is_malformed_http(const boost::system::error_code& ec) {
  static const auto& http_errors = http::make_error_code(http::error::bad_target).category();
  return ec.category() == http_errors && ec != http::error::end_of_stream && ec != http::error::partial_message;
}

RecordedRequest record_of(const Request& req) {
  RecordedRequest r;
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  for (const auto& field : req) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers.emplace_back(std::move(name), std::string(field.value()));
  }
  r.body = req.body();
  r.time = unix_now();
  return r;
}

std::string models_json() {
  static constexpr std::array<std::string_view, 9> ids{
      "gpt-3.5-turbo", "gpt-4o-mini",            "gpt-4o",
      "gpt-4.1",       "gpt-4.1-mini",           "o3-mini",
      "text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"};
  json::array data;
  for (auto id : ids)
    data.emplace_back(json::object{{"id", id}, {"object", "model"}, {"created", 1715367049}, {"owned_by", "system"}});
  return json::serialize(json::object{{"object", "list"}, {"data", std::move(data)}});
}

// One client connection: reads requests in a keep-alive loop and answers each one.

}  // namespace

net::awaitable<void> Connection::serve() {
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(max_body_bytes_);
    auto [header_ec, header_bytes] = co_await http::async_read_header(socket_, buffer_, parser, nothrow);
    if (header_ec) {
      if (is_malformed_http(header_ec)) co_await reject_unreadable();
      co_return;
    }
    if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
      static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
      auto [ec, n] = co_await net::async_write(socket_, net::buffer(go_on), nothrow);
      if (ec) co_return;
    }
    auto [body_ec, body_bytes] = co_await http::async_read(socket_, buffer_, parser, nothrow);
    if (body_ec == http::error::body_limit) {
      co_await reject_oversized(parser.get());
      co_return;
    }
    if (body_ec) {
      if (is_malformed_http(body_ec)) co_await reject_unreadable();
      co_return;
    }
    Request request = parser.release();
    if (co_await answer(request) != Next::keep_alive) co_return;
  }
}

// Runs the handler; an exception before any byte of the answer was sent becomes a 500.
net::awaitable<Next> Connection::answer(Request& request) {
  response_started_ = false;
  std::string failure;
  try {
    co_return co_await dispatch(request);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  std::fprintf(stderr, "mock-upstream: error answering %s: %s\n", std::string(request.target()).c_str(),
               failure.c_str());
  if (response_started_) co_return Next::gone;
  co_return co_await send(request, http::status::internal_server_error,
                          error_json("Mock upstream internal error: " + failure, "server_error"));
}

net::awaitable<Next> Connection::dispatch(Request& request) {
  const Target target = split_target(request.target());
  if (target.path.starts_with("/_mock/")) co_return co_await control(request, target.path);
  state_.request_received();
  if (state_.recording_enabled()) state_.record(record_of(request));

  const auto deployment = azure_deployment(target.path);
  if (is_chat_path(target.path) || deployment) {
    if (request.method() != http::verb::post) co_return co_await send_invalid_url(request, target.path);
    if (deployment && !has_query_param(target.query, "api-version"))
      co_return co_await send(request, http::status::not_found,
                              error_json("Resource not found: the api-version query parameter is missing.",
                                         "invalid_request_error", "api-version", "404"));
    co_return co_await chat(request, deployment.value_or(std::string_view{}));
  }
  if (is_responses_path(target.path)) {
    if (request.method() != http::verb::post) co_return co_await send_invalid_url(request, target.path);
    co_return co_await responses(request);
  }
  if (is_embeddings_path(target.path)) {
    if (request.method() != http::verb::post) co_return co_await send_invalid_url(request, target.path);
    co_return co_await embeddings(request);
  }
  if (is_models_path(target.path) && request.method() == http::verb::get)
    co_return co_await send(request, http::status::ok, models_json());
  co_return co_await send_invalid_url(request, target.path);
}

net::awaitable<Next> Connection::send_invalid_url(const Request& request, std::string_view path) {
  return send(request, http::status::not_found,
              error_json(fmt::format("Invalid URL ({} {})", std::string_view(request.method_string()), path),
                         "invalid_request_error"));
}

net::awaitable<Next> Connection::send_stream(const Request& request, const std::vector<StreamEvent>& events,
                                 std::uint32_t chunk_delay_ms, const FaultSettings& faults,
                                 std::string_view request_id) {
  http::response<http::empty_body> head{http::status::ok, request.version()};
  head.set(http::field::server, "turnout-mock");
  head.set(http::field::content_type, "text/event-stream; charset=utf-8");
  head.set(http::field::cache_control, "no-cache");
  head.set("x-request-id", request_id);
  head.keep_alive(request.keep_alive());
  head.chunked(true);
  http::response_serializer<http::empty_body> serializer{head};
  response_started_ = true;
  auto [head_ec, head_bytes] = co_await http::async_write_header(socket_, serializer, nothrow);
  if (head_ec) co_return Next::gone;

  state_.stream_started();
  const auto end = co_await send_events(events, chunk_delay_ms, faults);
  state_.stream_ended(end);
  if (end != MockState::StreamEnd::completed) co_return Next::gone;
  auto [last_ec, last_bytes] = co_await net::async_write(socket_, http::make_chunk_last(), nothrow);
  if (last_ec) co_return Next::gone;
  co_return head.keep_alive() ? Next::keep_alive : Next::close;
}

net::awaitable<MockState::StreamEnd> Connection::send_events(const std::vector<StreamEvent>& events,
                                                 std::uint32_t chunk_delay_ms, const FaultSettings& faults) {
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (faults.reset_after_chunks && i == *faults.reset_after_chunks) {
      reset_connection();
      co_return MockState::StreamEnd::injected_fault;
    }
    if (faults.stall_after_chunks && i == *faults.stall_after_chunks) {
      co_await never_answer();
      co_return MockState::StreamEnd::injected_fault;
    }
    if (events[i].paced && chunk_delay_ms > 0) co_await sleep(std::chrono::milliseconds(chunk_delay_ms));
    auto [ec, n] = co_await net::async_write(socket_, http::make_chunk(net::buffer(events[i].text)), nothrow);
    if (ec) co_return MockState::StreamEnd::client_gone;
  }
  co_return MockState::StreamEnd::completed;
}

Response Connection::make_response(const Request& request, http::status status, std::string body,
                       std::string_view content_type, std::string_view request_id) {
  Response response{status, request.version()};
  response.set(http::field::server, "turnout-mock");
  response.set(http::field::content_type, content_type);
  if (!request_id.empty()) response.set("x-request-id", request_id);
  response.keep_alive(request.keep_alive());
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

net::awaitable<Next> Connection::send(const Request& request, http::status status, std::string body,
                          std::string_view content_type, std::string_view request_id) {
  return write(make_response(request, status, std::move(body), content_type, request_id));
}

net::awaitable<Next> Connection::write(Response response) {
  response_started_ = true;
  auto [ec, n] = co_await http::async_write(socket_, response, nothrow);
  if (ec) co_return Next::gone;
  co_return response.keep_alive() ? Next::keep_alive : Next::close;
}

// A request Beast could not parse (bad syntax, oversized header): say so, then close.
net::awaitable<void> Connection::reject_unreadable() {
  Response response{http::status::bad_request, 11};
  response.set(http::field::content_type, "application/json");
  response.keep_alive(false);
  response.body() = error_json("Malformed HTTP request.", "invalid_request_error");
  response.prepare_payload();
  co_await http::async_write(socket_, response, nothrow);
}

// The rest of the body is still unread, so the connection cannot be reused.
net::awaitable<void> Connection::reject_oversized(const Request& request) {
  auto response = make_response(request, http::status::payload_too_large,
                                error_json("Request body too large for the mock upstream.", "invalid_request_error"));
  response.keep_alive(false);
  co_await write(std::move(response));
}

// Keeps the connection open without answering until the client gives up.
net::awaitable<Next> Connection::never_answer() {
  std::array<char, 4096> discard;
  for (;;) {
    auto [ec, n] = co_await socket_.async_read_some(net::buffer(discard), nothrow);
    if (ec) co_return Next::gone;
  }
}

// An abrupt close: SO_LINGER 0 makes close() send a TCP RST instead of a FIN.
Next Connection::reset_connection() {
  boost::system::error_code ignored;
  socket_.set_option(net::socket_base::linger(true, 0), ignored);
  socket_.close(ignored);
  return Next::gone;
}

net::awaitable<void> Connection::sleep(std::chrono::milliseconds duration) {
  net::steady_timer timer(socket_.get_executor(), duration);
  co_await timer.async_wait(nothrow);
}

}  // namespace turnout::mock
