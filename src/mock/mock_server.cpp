#include "mock/mock_server.hpp"

#include "listener/acceptor.hpp"

#include "common/clock.hpp"
#include "mock/chat_call.hpp"
#include "mock/chat_reply.hpp"
#include "mock/embeddings_reply.hpp"
#include "mock/responses_reply.hpp"

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

// What the connection does after a request has been answered.
enum class Next { keep_alive, close, gone };

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
class Connection {
 public:
  Connection(tcp::socket socket, MockState& state, std::size_t max_body_bytes)
      : socket_(std::move(socket)), state_(state), max_body_bytes_(max_body_bytes), random_(std::random_device{}()) {}

  net::awaitable<void> serve() {
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

 private:
  // Runs the handler; an exception before any byte of the answer was sent becomes a 500.
  net::awaitable<Next> answer(Request& request) {
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

  net::awaitable<Next> dispatch(Request& request) {
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

  net::awaitable<Next> send_invalid_url(const Request& request, std::string_view path) {
    return send(request, http::status::not_found,
                error_json(fmt::format("Invalid URL ({} {})", std::string_view(request.method_string()), path),
                           "invalid_request_error"));
  }

  // ---- chat completions ------------------------------------------------------------

  net::awaitable<Next> chat(const Request& request, std::string_view deployment) {
    auto root = parse_json_body(request.body());
    if (!root) co_return co_await reject_chat(request, root.error());
    auto call = read_chat_call(*root, deployment);
    if (!call) co_return co_await reject_chat(request, call.error());

    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    const double fault_draw = uniform(random_);
    const double jitter_draw = uniform(random_);
    const CallPlan plan = state_.plan_chat_call(call->model, call->stream, fault_draw, jitter_draw);
    if (plan.latency.count() > 0) co_await sleep(plan.latency);

    const FaultSettings no_faults;
    const FaultSettings& faults = plan.faulted ? plan.settings->faults : no_faults;
    if (faults.hang) co_return co_await never_answer();
    if (faults.fail_status || faults.html_error) co_return co_await send_failure(request, faults);

    const auto prompt_tokens = count_prompt_tokens(*root, call->model);
    const auto completion = generate_completion(*call, plan.settings->reply,
                                                {plan.sequence, static_cast<std::int64_t>(unix_now())}, prompt_tokens);
    const auto request_id = fmt::format("req_mock_{}", plan.sequence);
    if (call->stream) co_return co_await stream(request, *call, completion, plan.settings->reply, faults, request_id);

    // Without a stream, "after K chunks" faults strike before any byte of the answer.
    if (faults.reset_after_chunks) co_return reset_connection();
    if (faults.stall_after_chunks) co_return co_await never_answer();
    auto body = faults.malformed ? truncated_completion_json(completion) : completion_json(completion);
    co_return co_await send(request, http::status::ok, std::move(body), "application/json", request_id);
  }

  // ---- responses ---------------------------------------------------------------------

  // Answered through the chat machinery (responses_reply.hpp), with the same settings and
  // faults; a stream ends without response.completed when a fault cuts it.
  net::awaitable<Next> responses(const Request& request) {
    auto root = parse_json_body(request.body());
    if (!root) co_return co_await reject_chat(request, root.error());
    const auto* model = root->is_object() ? root->get_object().if_contains("model") : nullptr;
    if (!model || !model->is_string())
      co_return co_await reject_chat(request, InvalidRequest{"Missing required parameter: 'model'.", "model"});
    auto chat = chat_equivalent(*root);
    if (!chat) co_return co_await reject_chat(request, chat.error());
    auto call = read_chat_call(*chat, model->get_string());
    if (!call) co_return co_await reject_chat(request, call.error());
    const auto* stream_flag = root->get_object().if_contains("stream");
    const bool stream = stream_flag && stream_flag->is_bool() && stream_flag->get_bool();

    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    const double fault_draw = uniform(random_);
    const double jitter_draw = uniform(random_);
    const CallPlan plan = state_.plan_chat_call(call->model, stream, fault_draw, jitter_draw);
    if (plan.latency.count() > 0) co_await sleep(plan.latency);
    const FaultSettings no_faults;
    const FaultSettings& faults = plan.faulted ? plan.settings->faults : no_faults;
    if (faults.hang) co_return co_await never_answer();
    if (faults.fail_status || faults.html_error) co_return co_await send_failure(request, faults);

    auto completion = generate_completion(*call, plan.settings->reply,
                                          {plan.sequence, static_cast<std::int64_t>(unix_now())},
                                          count_prompt_tokens(*chat, call->model));
    completion.id = fmt::format("resp_mock_{}", plan.sequence);
    const auto request_id = fmt::format("req_mock_{}", plan.sequence);
    if (stream) {
      const auto events = response_stream_events(completion, plan.settings->reply.chunks, faults.malformed);
      co_return co_await send_stream(request, events, plan.settings->reply.chunk_delay_ms, faults, request_id);
    }
    if (faults.reset_after_chunks) co_return reset_connection();
    if (faults.stall_after_chunks) co_return co_await never_answer();
    auto body = response_json(completion);
    if (faults.malformed) body.resize(body.size() / 2);
    co_return co_await send(request, http::status::ok, std::move(body), "application/json", request_id);
  }

  // ---- embeddings ----------------------------------------------------------------------

  // The same settings and faults as chat: a fault that strikes "after K chunks" strikes
  // before any byte here, as for a buffered chat answer.
  net::awaitable<Next> embeddings(const Request& request) {
    auto root = parse_json_body(request.body());
    if (!root) co_return co_await reject_chat(request, root.error());
    auto call = read_embeddings_call(*root);
    if (!call) co_return co_await reject_chat(request, call.error());

    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    const double fault_draw = uniform(random_);
    const double jitter_draw = uniform(random_);
    const CallPlan plan = state_.plan_chat_call(call->model, false, fault_draw, jitter_draw);
    if (plan.latency.count() > 0) co_await sleep(plan.latency);
    const FaultSettings no_faults;
    const FaultSettings& faults = plan.faulted ? plan.settings->faults : no_faults;
    if (faults.hang || faults.stall_after_chunks) co_return co_await never_answer();
    if (faults.fail_status || faults.html_error) co_return co_await send_failure(request, faults);
    if (faults.reset_after_chunks) co_return reset_connection();

    auto body = embeddings_json(*call, count_embedding_tokens(*call));
    if (faults.malformed) body.resize(body.size() / 2);
    co_return co_await send(request, http::status::ok, std::move(body), "application/json",
                            fmt::format("req_mock_{}", plan.sequence));
  }

  net::awaitable<Next> reject_chat(const Request& request, const InvalidRequest& error) {
    state_.chat_rejected();
    return send(request, http::status::bad_request, error_json(error.message, "invalid_request_error", error.param));
  }

  net::awaitable<Next> send_failure(const Request& request, const FaultSettings& faults) {
    const unsigned status = faults.fail_status.value_or(502);
    auto response = make_response(request, static_cast<http::status>(status),
                                  faults.html_error ? html_error_page(status) : simulated_error_json(status),
                                  faults.html_error ? "text/html" : "application/json");
    if (!faults.retry_after.empty()) response.set(http::field::retry_after, faults.retry_after);
    return write(std::move(response));
  }

  net::awaitable<Next> stream(const Request& request, const ChatCall& call, const GeneratedCompletion& completion,
                              const ReplySettings& reply, const FaultSettings& faults, std::string_view request_id) {
    const StreamShape shape{reply.chunks, call.include_usage && !faults.no_usage, faults.malformed};
    const auto events = stream_events(completion, shape);
    co_return co_await send_stream(request, events, reply.chunk_delay_ms, faults, request_id);
  }

  net::awaitable<Next> send_stream(const Request& request, const std::vector<StreamEvent>& events,
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

  net::awaitable<MockState::StreamEnd> send_events(const std::vector<StreamEvent>& events,
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

  // ---- control API -------------------------------------------------------------------

  net::awaitable<Next> control(const Request& request, std::string_view path) {
    const auto method = request.method();
    if (path == "/_mock/config" && method == http::verb::get) co_return co_await send_settings(request);
    if (path == "/_mock/config" && method == http::verb::post) {
      auto settings = settings_from_request(request);
      if (!settings)
        co_return co_await send(request, http::status::bad_request,
                                error_json(settings.error().message, "invalid_request_error"));
      state_.replace_settings(std::move(*settings));
      co_return co_await send_settings(request);
    }
    if (path == "/_mock/reset" && method == http::verb::post) {
      state_.reset();
      co_return co_await send_settings(request);
    }
    if (path == "/_mock/requests" && method == http::verb::get)
      co_return co_await send(request, http::status::ok, json::serialize(state_.recordings_json()));
    if (path == "/_mock/requests" && method == http::verb::delete_) {
      state_.clear_recordings();
      co_return co_await send(request, http::status::ok, R"({"requests":[]})");
    }
    if (path == "/_mock/stats" && method == http::verb::get)
      co_return co_await send(request, http::status::ok, json::serialize(state_.stats_json()));
    co_return co_await send_invalid_url(request, path);
  }

  Result<MockSettings> settings_from_request(const Request& request) const {
    if (request.body().empty()) return state_.startup_settings();
    boost::system::error_code ec;
    const auto body = json::parse(request.body(), ec);
    if (ec) return make_error("the settings are not valid JSON (" + ec.message() + ")");
    return settings_from_json(body, state_.startup_settings());
  }

  net::awaitable<Next> send_settings(const Request& request) {
    return send(request, http::status::ok,
                json::serialize(json::object{{"config", settings_to_json(*state_.settings())}}));
  }

  // ---- transport ---------------------------------------------------------------------

  Response make_response(const Request& request, http::status status, std::string body,
                         std::string_view content_type = "application/json", std::string_view request_id = {}) {
    Response response{status, request.version()};
    response.set(http::field::server, "turnout-mock");
    response.set(http::field::content_type, content_type);
    if (!request_id.empty()) response.set("x-request-id", request_id);
    response.keep_alive(request.keep_alive());
    response.body() = std::move(body);
    response.prepare_payload();
    return response;
  }

  net::awaitable<Next> send(const Request& request, http::status status, std::string body,
                            std::string_view content_type = "application/json", std::string_view request_id = {}) {
    return write(make_response(request, status, std::move(body), content_type, request_id));
  }

  net::awaitable<Next> write(Response response) {
    response_started_ = true;
    auto [ec, n] = co_await http::async_write(socket_, response, nothrow);
    if (ec) co_return Next::gone;
    co_return response.keep_alive() ? Next::keep_alive : Next::close;
  }

  // A request Beast could not parse (bad syntax, oversized header): say so, then close.
  net::awaitable<void> reject_unreadable() {
    Response response{http::status::bad_request, 11};
    response.set(http::field::content_type, "application/json");
    response.keep_alive(false);
    response.body() = error_json("Malformed HTTP request.", "invalid_request_error");
    response.prepare_payload();
    co_await http::async_write(socket_, response, nothrow);
  }

  // The rest of the body is still unread, so the connection cannot be reused.
  net::awaitable<void> reject_oversized(const Request& request) {
    auto response = make_response(request, http::status::payload_too_large,
                                  error_json("Request body too large for the mock upstream.", "invalid_request_error"));
    response.keep_alive(false);
    co_await write(std::move(response));
  }

  // Keeps the connection open without answering until the client gives up.
  net::awaitable<Next> never_answer() {
    std::array<char, 4096> discard;
    for (;;) {
      auto [ec, n] = co_await socket_.async_read_some(net::buffer(discard), nothrow);
      if (ec) co_return Next::gone;
    }
  }

  // An abrupt close: SO_LINGER 0 makes close() send a TCP RST instead of a FIN.
  Next reset_connection() {
    boost::system::error_code ignored;
    socket_.set_option(net::socket_base::linger(true, 0), ignored);
    socket_.close(ignored);
    return Next::gone;
  }

  net::awaitable<void> sleep(std::chrono::milliseconds duration) {
    net::steady_timer timer(socket_.get_executor(), duration);
    co_await timer.async_wait(nothrow);
  }

  tcp::socket socket_;
  MockState& state_;
  const std::size_t max_body_bytes_;
  beast::flat_buffer buffer_;
  std::mt19937_64 random_;
  bool response_started_ = false;
};

void report_exception(std::exception_ptr error) {
  if (!error) return;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mock-upstream: connection error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "mock-upstream: connection error\n");
  }
}

net::awaitable<void> serve_connection(tcp::socket socket, MockState& state, std::size_t max_body_bytes) {
  Connection connection(std::move(socket), state, max_body_bytes);
  co_await connection.serve();
}

}  // namespace

struct MockServer::Impl {
  Impl(const ServerOptions& opts, MockSettings startup)
      : options(opts), state(std::move(startup), opts.recording), io(static_cast<int>(opts.threads)),
        acceptor(io.get_executor()) {}

  Result<void> listen() {
    boost::system::error_code ec;
    net::ip::make_address(options.host, ec);
    if (ec) return make_error(fmt::format("--host: '{}' is not an IP address", options.host));
    auto port = acceptor.listen(options.host, options.port);
    if (!port) return port.error();
    bound_port = *port;
    return {};
  }

  void run() {
    auto next_executor = [this]() -> net::any_io_executor { return net::make_strand(io); };
    auto on_accept = [this](tcp::socket socket) {
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      const auto executor = socket.get_executor();
      net::co_spawn(executor, serve_connection(std::move(socket), state, options.max_body_bytes), report_exception);
    };
    net::co_spawn(io, acceptor.run(next_executor, on_accept), report_exception);
    threads.reserve(options.threads);
    for (unsigned i = 0; i < options.threads; ++i) threads.emplace_back([this] { io.run(); });
  }

  void stop() {
    io.stop();
    for (auto& t : threads)
      if (t.joinable()) t.join();
    threads.clear();
  }

  const ServerOptions options;
  MockState state;  // outlives io: pending connections refer to it
  net::io_context io;
  listener::Acceptor acceptor;  // the gateway's accept loop, EMFILE back-off included
  std::uint16_t bound_port = 0;
  std::vector<std::thread> threads;
};

Result<std::unique_ptr<MockServer>> MockServer::start(const ServerOptions& options, MockSettings startup) {
  if (options.threads == 0) return make_error("--threads: must be at least 1");
  auto impl = std::make_unique<Impl>(options, std::move(startup));
  if (auto listening = impl->listen(); !listening) return listening.error();
  impl->run();
  return std::unique_ptr<MockServer>(new MockServer(std::move(impl)));
}

MockServer::MockServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MockServer::~MockServer() { stop(); }
std::uint16_t MockServer::port() const { return impl_->bound_port; }
const std::string& MockServer::host() const { return impl_->options.host; }
MockState& MockServer::state() { return impl_->state; }
void MockServer::stop() { impl_->stop(); }

}  // namespace turnout::mock
