// Streaming chat completions (docs/REFERENCE.md §2.3): the chat dialect of the stream
// relay (stream_relay.hpp). Chunks pass through as they come; the usage chunk goes only to
// a client that asked for it (the gateway always asks upstream), with cost_usd added;
// `[DONE]` is held back until the call's record is durable.
#include "metering/call_bill.hpp"
#include "server/endpoints/chat_call.hpp"
#include "server/endpoints/stream_relay.hpp"
#include "server/sse.hpp"

#include <simdjson.h>

namespace turnout::server::endpoints {

namespace {

class ChatStream final : public StreamDialect {
 public:
  ChatStream(const CallPlan& plan, const routing::Candidate& served, simdjson::dom::parser& parser)
      : plan_(plan), served_(served), parser_(parser), meter_(served.encoding) {}

  void on_event(std::string_view event, std::string& out) override {
    std::string_view data;
    if (!sse_event_data(event, scratch_, data)) {
      out.append(event);  // comments and keep-alives pass through
      return;
    }
    if (data == "[DONE]") {
      saw_done_ = true;  // held back until the ledger has the call
      return;
    }
    auto parsed = parser_.parse(data.data(), data.size());
    if (parsed.error() || !parsed.value_unsafe().is_object()) {
      error_ = ApiError{502, "The upstream sent a malformed stream event (not JSON).", "upstream_error", "",
                        "upstream_stream_error"};
      return;
    }
    const simdjson::dom::element root = parsed.value_unsafe();
    if (auto err = root["error"]; !err.error() && !err.value_unsafe().is_null()) {
      out.append(event);
      error_forwarded_ = true;
      error_ = ApiError{502, "The upstream reported an error mid-stream.", "upstream_error", "", "upstream_stream_error"};
      return;
    }
    meter_.observe(root);
    auto usage = root["usage"];
    if (usage.error() || !usage.value_unsafe().is_object()) {
      out.append(event);
      return;
    }
    auto choices = root["choices"];
    const bool usage_only = !choices.error() && choices.value_unsafe().is_array() &&
                            choices.value_unsafe().get_array().value_unsafe().size() == 0;
    if (!usage_only) {
      out.append(event);
      return;
    }
    // The usage chunk: only for a client that asked for it, with the exact cost added.
    if (!plan_.include_usage) return;
    std::string json(data);
    metering::add_gateway_fields(
        json, meter_.reported() ? pricing::cost(served_.rates, *meter_.reported()) : std::nullopt, std::nullopt);
    out += "data: ";
    out += json;
    out += "\n\n";
  }

  bool finished() const override { return saw_done_; }
  const std::optional<ApiError>& error() const override { return error_; }
  void fail(ApiError error) override { error_ = std::move(error); }
  metering::MeteredUsage usage(const metering::PromptCount& prompt_tokens) const override {
    return meter_.finish(prompt_tokens);
  }
  std::string tail(const std::optional<pricing::Money>&) const override {
    if (error_) return error_forwarded_ ? std::string() : "data: " + error_body(*error_) + "\n\n";
    return "data: [DONE]\n\n";
  }

 private:
  const CallPlan& plan_;
  const routing::Candidate& served_;
  simdjson::dom::parser& parser_;
  metering::StreamUsage meter_;
  std::string scratch_;
  bool saw_done_ = false;
  bool error_forwarded_ = false;  // the upstream sent its own error event
  std::optional<ApiError> error_;
};

}  // namespace

boost::asio::awaitable<void> relay_chat_stream(Services& services, Call& call, const CallPlan& plan,
                                               CallOutcome& outcome, ledger::CallRecord& rec) {
  ChatStream dialect(plan, *outcome.served, call.worker.response_parser);
  co_await relay_stream(services, call, plan, outcome, rec, dialect);
}

}  // namespace turnout::server::endpoints
