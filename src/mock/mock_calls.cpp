// The simulated provider calls of a mock connection (mock_connection.hpp): chat
// completions, Responses and embeddings, each with the settings' faults.
#include "mock/mock_connection.hpp"

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

namespace turnout::mock {
namespace net = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using Request = Connection::Request;
using Response = Connection::Response;

net::awaitable<Next> Connection::chat(const Request& request, std::string_view deployment) {
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

// Answered through the chat machinery (responses_reply.hpp), with the same settings and
// faults; a stream ends without response.completed when a fault cuts it.
net::awaitable<Next> Connection::responses(const Request& request) {
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

// The same settings and faults as chat: a fault that strikes "after K chunks" strikes
// before any byte here, as for a buffered chat answer.
net::awaitable<Next> Connection::embeddings(const Request& request) {
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

net::awaitable<Next> Connection::reject_chat(const Request& request, const InvalidRequest& error) {
  state_.chat_rejected();
  return send(request, http::status::bad_request, error_json(error.message, "invalid_request_error", error.param));
}

net::awaitable<Next> Connection::send_failure(const Request& request, const FaultSettings& faults) {
  const unsigned status = faults.fail_status.value_or(502);
  auto response = make_response(request, static_cast<http::status>(status),
                                faults.html_error ? html_error_page(status) : simulated_error_json(status),
                                faults.html_error ? "text/html" : "application/json");
  if (!faults.retry_after.empty()) response.set(http::field::retry_after, faults.retry_after);
  return write(std::move(response));
}

net::awaitable<Next> Connection::stream(const Request& request, const ChatCall& call, const GeneratedCompletion& completion,
                            const ReplySettings& reply, const FaultSettings& faults, std::string_view request_id) {
  const StreamShape shape{reply.chunks, call.include_usage && !faults.no_usage, faults.malformed};
  const auto events = stream_events(completion, shape);
  co_return co_await send_stream(request, events, reply.chunk_delay_ms, faults, request_id);
}

}  // namespace turnout::mock
