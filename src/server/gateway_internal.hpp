#pragma once
// Definitions shared by the gateway's translation units (gateway.cpp, gateway_stream.cpp);
// not part of the server's public interface.
#include "server/call_plan.hpp"
#include "server/chat_request.hpp"
#include "server/gateway.hpp"
#include "upstream/client.hpp"
#include "upstream/proxy.hpp"

#include <simdjson.h>

#include <chrono>
#include <optional>
#include <random>
#include <string>

namespace turnout::server {

using Clock = std::chrono::steady_clock;

struct Gateway::WorkerState {
  WorkerState(boost::asio::any_io_executor executor, std::shared_ptr<boost::asio::ssl::context> tls,
              std::shared_ptr<const upstream::ProxyConfig> proxy)
      : client(std::move(executor), std::move(tls), std::move(proxy)), rng(std::random_device{}()) {}
  upstream::Client client;
  RequestParser request_parser;
  simdjson::dom::parser response_parser;  // upstream bodies; used between suspensions only
  std::mt19937_64 rng;
};

// What the access log and metrics need to know about one request.
struct Gateway::Exchange {
  Clock::time_point start = Clock::now();
  std::string request_id;
  std::string key_id;
  std::string_view method;
  std::string_view path;
  std::string model;
  std::string route;
  std::uint64_t prompt_tokens = 0;
  std::uint64_t completion_tokens = 0;
  std::optional<pricing::Money> cost;
  unsigned attempts = 0;
  std::string error_type;
  Clock::duration upstream{};
  Clock::duration waiting{};  // backoff sleeps: neither upstream nor gateway work
  bool is_chat = false;
  unsigned stream_status = 200;  // streamed responses: the status the client saw (499: gone)
};

double ms_between(Clock::time_point a, Clock::time_point b);

// usage {prompt_tokens, completion_tokens, prompt_tokens_details.cached_tokens}; nullopt
// when the two counts are not both there.
std::optional<pricing::Usage> read_usage(simdjson::dom::element usage);

// Appends "cost_usd" (null when unpriced) and, if given, "latency_ms" as the last members
// of a JSON object, keeping every byte before them.
void add_gateway_fields(std::string& body, const std::optional<pricing::Money>& cost,
                        std::optional<double> latency_ms);

}  // namespace turnout::server
