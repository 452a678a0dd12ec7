// Streaming Responses calls (docs/REFERENCE.md §2.15): the Responses dialect of the stream
// relay (stream_relay.hpp). Typed events pass through as they come; the final
// `response.completed` (or `response.incomplete`) carries the usage and is held back until
// the call's record is durable, then sent with `cost_usd` added. A stream that fails midway
// ends with an `error` event instead, never with response.completed.
#include "common/json_text.hpp"
#include "metering/call_bill.hpp"
#include "metering/responses_usage.hpp"
#include "server/endpoints/responses_call.hpp"
#include "server/endpoints/stream_relay.hpp"
#include "server/sse.hpp"

#include <fmt/format.h>
#include <simdjson.h>

namespace turnout::server::endpoints {

namespace {

class ResponsesStream final : public StreamDialect {
 public:
  ResponsesStream(simdjson::dom::parser& parser, tokenizer::EncodingId encoding)
      : parser_(parser), produced_(encoding) {}

  void on_event(std::string_view event, std::string& out) override {
    std::string_view data;
    if (!sse_event_data(event, scratch_, data)) {
      out.append(event);  // comments and keep-alives pass through
      return;
    }
    auto parsed = parser_.parse(data.data(), data.size());
    if (parsed.error() || !parsed.value_unsafe().is_object()) {
      error_ = ApiError{502, "The upstream sent a malformed stream event (not JSON).", "upstream_error", "",
                        "upstream_stream_error"};
      return;
    }
    const simdjson::dom::element root = parsed.value_unsafe();
    if (auto sequence = root["sequence_number"]; !sequence.error() && sequence.value_unsafe().is_uint64())
      next_sequence_ = sequence.value_unsafe().get_uint64().value_unsafe() + 1;
    std::string_view type;
    if (auto t = root["type"]; !t.error() && t.value_unsafe().is_string()) type = t.value_unsafe().get_string().value_unsafe();
    if (type == "error" || type == "response.failed") {
      out.append(event);  // the upstream's own terminal event reaches the client
      error_forwarded_ = true;
      error_ = ApiError{502, "The upstream reported an error mid-stream.", "upstream_error", "", "upstream_stream_error"};
      observe_usage(root);
      return;
    }
    if (type == "response.completed" || type == "response.incomplete") {
      observe_usage(root);
      final_event_type_ = type;
      final_event_data_.assign(data);  // held back until the ledger has the call
      return;
    }
    if (type == "response.output_text.delta" || type == "response.function_call_arguments.delta") {
      if (auto delta = root["delta"]; !delta.error() && delta.value_unsafe().is_string())
        produced_.append(delta.value_unsafe().get_string().value_unsafe());
    }
    out.append(event);
  }

  bool finished() const override { return !final_event_type_.empty(); }
  const std::optional<ApiError>& error() const override { return error_; }
  void fail(ApiError error) override { error_ = std::move(error); }

  metering::MeteredUsage usage(const metering::PromptCount& prompt_tokens) const override {
    if (reported_) return metering::MeteredUsage{*reported_, true};
    metering::MeteredUsage counted;
    counted.usage.prompt_tokens = prompt_tokens();
    counted.usage.completion_tokens = produced_.total();
    return counted;
  }

  std::string tail(const std::optional<pricing::Money>& cost) const override {
    if (error_) {
      if (error_forwarded_) return {};
      std::string data = R"({"type":"error","code":)";
      append_json_string(data, error_->code);
      data += R"(,"message":)";
      append_json_string(data, error_->message);
      data += fmt::format(R"(,"param":null,"sequence_number":{}}})", next_sequence_);
      return "event: error\ndata: " + data + "\n\n";
    }
    std::string data = final_event_data_;
    metering::add_gateway_fields(data, cost, std::nullopt);
    return fmt::format("event: {}\ndata: {}\n\n", final_event_type_, data);
  }

 private:
  void observe_usage(simdjson::dom::element root) {
    if (auto usage = root["response"]["usage"]; !usage.error())
      if (auto read = metering::read_responses_usage(usage.value_unsafe())) reported_ = *read;
  }

  simdjson::dom::parser& parser_;
  std::string scratch_;
  tokenizer::StreamingCount produced_;  // streamed text and arguments, counted as they pass
  std::optional<pricing::Usage> reported_;
  std::string final_event_type_;
  std::string final_event_data_;
  std::uint64_t next_sequence_ = 0;
  bool error_forwarded_ = false;
  std::optional<ApiError> error_;
};

}  // namespace

boost::asio::awaitable<void> relay_responses_stream(Services& services, Call& call, const CallPlan& plan,
                                                    CallOutcome& outcome, ledger::CallRecord& rec) {
  ResponsesStream dialect(call.worker.response_parser, outcome.served->encoding);
  co_await relay_stream(services, call, plan, outcome, rec, dialect);
}

}  // namespace turnout::server::endpoints
