#include "server/gateway.hpp"

#include "server/gateway_internal.hpp"
#include "server/openai_error.hpp"
#include "server/sse.hpp"
#include "server/time_util.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <simdjson.h>
#include <spdlog/logger.h>

#include <algorithm>
#include <charconv>
#include <thread>

namespace turnout::server {
namespace asio = boost::asio;

namespace {

constexpr std::string_view kJson = "application/json";

std::string key_id_for(std::string_view key) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(key.data(), key.size(), digest, &len, EVP_sha256(), nullptr);
  std::string id = "key_";
  for (unsigned i = 0; i < 6 && i < len; ++i) id += fmt::format("{:02x}", digest[i]);
  return id;
}

bool valid_client_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.' || c == ':';
  });
}

std::string generate_request_id(std::mt19937_64& rng) {
  return fmt::format("req_{:016x}{:08x}", rng(), static_cast<std::uint32_t>(rng()));
}

bool retryable_status(unsigned status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}


HttpResponse json_response(http::status status, unsigned version, std::string body) {
  HttpResponse res{status, version};
  res.set(http::field::content_type, kJson);
  res.body() = std::move(body);
  return res;
}

// Usage from an upstream chat.completion, or the gateway's own count when it has none.
struct MeteredUsage {
  pricing::Usage usage;
  bool reported = false;
};

std::optional<MeteredUsage> meter_completion(simdjson::dom::element root, const routing::Candidate& served) {
  if (!root.is_object()) return std::nullopt;
  auto choices = root["choices"];
  if (choices.error() || !choices.value_unsafe().is_array()) return std::nullopt;
  MeteredUsage m;
  if (auto usage = root["usage"]; !usage.error() && usage.value_unsafe().is_object()) {
    if (auto reported = read_usage(usage.value_unsafe())) {
      m.usage = *reported;
      m.reported = true;
      return m;
    }
  }
  // No usage reported: count what the model produced with its own encoding.
  const auto& enc = tokenizer::Encoding::get(served.encoding);
  m.usage.prompt_tokens = served.prompt_tokens;
  const simdjson::dom::array choice_array = choices.value_unsafe().get_array().value_unsafe();
  for (auto choice : choice_array) {
    auto message = choice["message"];
    if (message.error() || !message.value_unsafe().is_object()) continue;
    if (auto content = message.value_unsafe()["content"]; !content.error() && content.value_unsafe().is_string())
      m.usage.completion_tokens += enc.count(content.value_unsafe().get_string().value_unsafe());
    if (auto calls = message.value_unsafe()["tool_calls"]; !calls.error() && calls.value_unsafe().is_array()) {
      const simdjson::dom::array call_array = calls.value_unsafe().get_array().value_unsafe();
      for (auto call : call_array) {
        auto args = call["function"]["arguments"];
        if (!args.error() && args.value_unsafe().is_string())
          m.usage.completion_tokens += enc.count(args.value_unsafe().get_string().value_unsafe());
      }
    }
  }
  return m;
}

std::vector<std::string> configured_model_names(const config::Config& config) {
  std::vector<std::string> names;
  names.reserve(config.models.size());
  for (const auto& [name, model] : config.models) names.push_back(name);
  return names;
}

}  // namespace

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::optional<pricing::Usage> read_usage(simdjson::dom::element usage) {
  auto get = [](simdjson::dom::element obj, std::string_view key) -> std::optional<std::uint64_t> {
    auto v = obj[key];
    if (v.error() || !v.value_unsafe().is_uint64()) return std::nullopt;
    return v.value_unsafe().get_uint64().value_unsafe();
  };
  auto prompt = get(usage, "prompt_tokens");
  auto completion = get(usage, "completion_tokens");
  if (!prompt || !completion) return std::nullopt;
  pricing::Usage u;
  u.prompt_tokens = *prompt;
  u.completion_tokens = *completion;
  if (auto details = usage["prompt_tokens_details"]; !details.error() && details.value_unsafe().is_object())
    u.cached_tokens = std::min(get(details.value_unsafe(), "cached_tokens").value_or(0), *prompt);
  return u;
}

void add_gateway_fields(std::string& body, const std::optional<pricing::Money>& cost,
                        std::optional<double> latency_ms) {
  while (!body.empty() && (body.back() == ' ' || body.back() == '\n' || body.back() == '\r' || body.back() == '\t'))
    body.pop_back();
  if (body.empty() || body.back() != '}') return;
  body.pop_back();
  const std::size_t last = body.find_last_not_of(" \n\r\t");
  const bool empty_object = last != std::string::npos && body[last] == '{';
  body += empty_object ? "\"cost_usd\":" : ",\"cost_usd\":";
  body += cost ? pricing::format_usd(*cost) : "null";
  if (latency_ms) body += fmt::format(",\"latency_ms\":{:.3f}", *latency_ms);
  body.push_back('}');
}

Gateway::Gateway(const config::Config& config, ledger::Ledger& ledger, GatewayOptions options)
    : config_(config),
      ledger_(ledger),
      options_(std::move(options)),
      cooldowns_(config.routing.cooldown, configured_model_names(config)) {}

Gateway::~Gateway() {
  if (blocking_pool_) blocking_pool_->join();
}

Result<std::unique_ptr<Gateway>> Gateway::create(const config::Config& config, ledger::Ledger& ledger,
                                                 std::vector<asio::any_io_executor> executors, GatewayOptions options) {
  std::unique_ptr<Gateway> gw(new Gateway(config, ledger, std::move(options)));
  for (const auto& [name, provider] : config.providers) {
    auto endpoint = upstream::parse_base_url(provider.base_url);
    if (!endpoint) return make_error("providers." + name + ".base_url: " + endpoint.error().message);
    gw->endpoints_.emplace(name, std::move(*endpoint));
  }
  for (const auto& key : config.server.api_keys) gw->api_keys_.emplace_back(key, key_id_for(key));
  auto proxy = upstream::proxy_from_environment(config::process_env());
  if (!proxy) return proxy.error();
  std::shared_ptr<const upstream::ProxyConfig> shared_proxy;
  if (*proxy) shared_proxy = std::make_shared<const upstream::ProxyConfig>(std::move(**proxy));
  auto tls = upstream::make_client_tls_context();
  for (auto& ex : executors) gw->workers_.push_back(std::make_unique<WorkerState>(ex, tls, shared_proxy));
  gw->blocking_pool_ = std::make_unique<asio::thread_pool>(2);
  return gw;
}

RejectionResponses Gateway::rejections() {
  RejectionResponses r;
  r.body_too_large = [this](unsigned version, std::uint64_t limit) {
    metrics_.record_rejection("body_too_large", 413);
    return error_response(ApiError{413,
                                   fmt::format("Request body too large: the limit is {} bytes (server.max_body_bytes).", limit),
                                   "invalid_request_error", "", "request_too_large"},
                          version);
  };
  r.bad_request = [this](unsigned version, const std::string& why) {
    metrics_.record_rejection("malformed_http", 400);
    return error_response(ApiError{400, why, "invalid_request_error", "", "malformed_request"}, version);
  };
  return r;
}

std::optional<std::string> Gateway::authenticate(const HttpRequest& request) const {
  if (api_keys_.empty()) return std::string{};
  std::string_view auth = request[http::field::authorization];
  constexpr std::string_view bearer = "Bearer ";
  if (auth.size() <= bearer.size() || !boost::beast::iequals(auth.substr(0, bearer.size()), bearer)) return std::nullopt;
  const std::string_view presented = auth.substr(bearer.size());
  // Constant-time comparison against every key, so timing reveals nothing about them.
  std::optional<std::string> match;
  for (const auto& [key, id] : api_keys_) {
    if (key.size() == presented.size() && CRYPTO_memcmp(key.data(), presented.data(), key.size()) == 0) match = id;
  }
  return match;
}

asio::awaitable<std::optional<HttpResponse>> Gateway::handle(HttpRequest& request, Connection& connection) {
  Exchange ex;
  WorkerState& worker = *workers_[connection.worker_index];
  const std::string_view client_id = request["x-request-id"];
  ex.request_id = valid_client_request_id(client_id) ? std::string(client_id) : generate_request_id(worker.rng);
  const std::string_view target = request.target();
  ex.path = target.substr(0, target.find('?'));
  ex.method = request.method_string();

  const unsigned version = request.version();
  const auto method = request.method();
  HttpResponse res;
  const bool known_path = ex.path == "/v1/chat/completions" || ex.path == "/chat/completions" ||
                          ex.path == "/v1/models" || ex.path == "/route" || ex.path == "/stats" ||
                          ex.path == "/metrics" || ex.path == "/health";
  auto method_not_allowed = [&](const char* allowed) {
    HttpResponse r = error_response(
        ApiError{405, fmt::format("Method {} is not allowed on {}; use {}.", ex.method, ex.path, allowed),
                 "invalid_request_error", "", "method_not_allowed"},
        version);
    r.set(http::field::allow, allowed);
    return r;
  };

  if (ex.path == "/health") {
    res = method == http::verb::get ? handle_health(request) : method_not_allowed("GET");
  } else if (!known_path) {
    metrics_.record_rejection("unknown_url", 404);
    res = error_response(ApiError{404, fmt::format("Unknown request URL: {} {}.", ex.method, ex.path),
                                  "invalid_request_error", "", "unknown_url"},
                         version);
  } else if (auto key_id = authenticate(request); !key_id) {
    metrics_.record_rejection("unauthorized", 401);
    res = error_response(ApiError{401,
                                  "Incorrect or missing API key. Send a gateway key as 'Authorization: Bearer <key>'.",
                                  "invalid_request_error", "", "invalid_api_key"},
                         version);
    res.set(http::field::www_authenticate, "Bearer");
  } else {
    ex.key_id = std::move(*key_id);
    if (ex.path == "/v1/chat/completions" || ex.path == "/chat/completions") {
      if (method != http::verb::post) {
        res = method_not_allowed("POST");
      } else if (auto chat = co_await handle_chat(ex, request, connection)) {
        res = std::move(*chat);
      } else {
        log_access(ex, ex.stream_status);  // streamed: the response is already written
        co_return std::nullopt;
      }
    } else if (ex.path == "/v1/models") {
      res = method == http::verb::get ? handle_models(request) : method_not_allowed("GET");
    } else if (ex.path == "/route") {
      res = method == http::verb::post ? handle_route(ex, request, worker) : method_not_allowed("POST");
    } else if (ex.path == "/stats") {
      if (method == http::verb::get) {
        res = co_await handle_stats(ex, request);
      } else {
        res = method_not_allowed("GET");
      }
    } else {
      res = method == http::verb::get ? handle_metrics(request) : method_not_allowed("GET");
    }
  }
  res.set("x-request-id", ex.request_id);
  log_access(ex, res.result_int());
  co_return res;
}

asio::awaitable<CallOutcome> Gateway::run_attempts(Exchange& ex, WorkerState& worker, const CallPlan& plan,
                                                    std::string_view body) {
  const routing::Candidate& primary = plan.decision.primary;
  CallOutcome out;
  out.served = &primary;
  for (const routing::Candidate* next : candidates_to_try(plan)) {
    const routing::Candidate& candidate = *next;
    const bool is_fallback = &candidate != &primary;
    const config::ProviderConfig* provider = config_.find_provider(candidate.provider);
    const auto endpoint = endpoints_.find(candidate.provider);
    if (provider == nullptr || endpoint == endpoints_.end()) continue;
    if (is_fallback) ++out.fallbacks;
    // The body reaches the upstream unchanged but for `model` (and, for streams, the
    // usage request the gateway always makes).
    std::string extra = "\"model\":";
    append_json_string(extra, candidate.upstream_name);
    if (plan.stream) extra += R"(,"stream_options":{"include_usage":true})";
    const std::string forwarded = plan.stream ? rewrite_top_level(body, {"model", "stream_options"}, extra)
                                              : rewrite_top_level(body, {"model"}, extra);
    for (unsigned attempt = 0;; ++attempt) {
      ++ex.attempts;
      out.served = &candidate;
      out.route = is_fallback ? "fallback:" + primary.model : candidate.route;
      auto call = upstream::make_chat_request(*provider, endpoint->second, candidate.upstream_name, forwarded,
                                              ex.request_id);
      const auto sent = Clock::now();
      // (No co_await inside ?: — GCC 12 miscompiles temporaries there.)
      bool retryable = false;
      if (plan.stream) {
        retryable = co_await attempt_stream(worker, call, *provider, out);
      } else {
        retryable = co_await attempt_buffered(worker, call, out);
      }
      ex.upstream += Clock::now() - sent;
      record_attempt_outcome(candidate, retryable);
      if (!retryable) co_return out;
      if (attempt >= config_.routing.retries) break;  // next candidate
      // Exponential backoff with full jitter; an upstream Retry-After wins, up to the cap.
      ++out.retries;
      const auto cap = std::chrono::milliseconds(static_cast<long long>(config_.routing.max_retry_wait_s * 1000));
      std::optional<std::chrono::milliseconds> retry_after;
      if (out.response && out.response->retry_after)
        retry_after = parse_retry_after(*out.response->retry_after, unix_now());
      std::chrono::milliseconds wait;
      if (retry_after) {
        wait = std::min(*retry_after, cap);
      } else {
        const std::uint64_t ceiling = std::uint64_t{config_.routing.retry_backoff_ms} << std::min(attempt, 20u);
        wait = std::min(std::chrono::milliseconds(std::uniform_int_distribution<std::uint64_t>(0, ceiling)(worker.rng)),
                        cap);
      }
      const auto slept = Clock::now();
      asio::steady_timer timer(co_await asio::this_coro::executor, wait);
      co_await timer.async_wait(asio::use_awaitable);
      ex.waiting += Clock::now() - slept;
    }
  }
  co_return out;
}

std::vector<const routing::Candidate*> Gateway::candidates_to_try(const CallPlan& plan) const {
  const auto now = Clock::now();
  std::vector<const routing::Candidate*> candidates;
  candidates.reserve(1 + plan.decision.fallbacks.size());
  if (!cooldowns_.cooling_down(plan.decision.primary.model, now)) candidates.push_back(&plan.decision.primary);
  for (const auto& fallback : plan.decision.fallbacks) {
    if (!cooldowns_.cooling_down(fallback.model, now)) candidates.push_back(&fallback);
  }
  // Every candidate cooling down: try the routed model anyway (with its retries) rather
  // than fail a request nothing was tried for; its answer also ends the cooldown sooner
  // when the model has recovered.
  if (candidates.empty()) candidates.push_back(&plan.decision.primary);
  return candidates;
}

void Gateway::record_attempt_outcome(const routing::Candidate& candidate, bool retryable_failure) {
  if (!retryable_failure) {
    cooldowns_.record_success(candidate.model);
  } else if (cooldowns_.record_failure(candidate.model, Clock::now()) && options_.access_log) {
    std::string line = R"({"event":"model_cooldown","model":)";
    append_json_string(line, candidate.model);
    line += fmt::format(R"(,"duration_s":{}}})", config_.routing.cooldown.duration_s);
    options_.access_log->warn(line);
  }
}

asio::awaitable<bool> Gateway::attempt_buffered(WorkerState& worker, const upstream::Request& call, CallOutcome& out) {
  auto result = co_await worker.client.send(call);
  if (!result) {
    out.failure = std::move(result.error());
    out.response.reset();
    co_return true;
  }
  out.response = std::move(result.value());
  out.failure.reset();
  co_return retryable_status(out.response->status);
}

asio::awaitable<bool> Gateway::attempt_stream(WorkerState& worker, const upstream::Request& call,
                                              const config::ProviderConfig& provider, CallOutcome& out) {
  out.response.reset();
  out.failure.reset();
  out.stream.reset();
  out.stream_prefix.clear();
  const auto idle = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(provider.stream_idle_timeout_s));
  auto opened = co_await worker.client.open_stream(call, idle);
  if (!opened) {
    out.failure = std::move(opened.error());
    co_return true;
  }
  upstream::ResponseStream stream = std::move(opened.value());
  if (stream.status() < 200 || stream.status() >= 300) {
    auto rest = co_await stream.read_rest();
    if (!rest) {
      out.failure = std::move(rest.error());
      co_return true;
    }
    out.response = upstream::Response{stream.status(), stream.content_type(), stream.retry_after(), std::move(*rest)};
    co_return retryable_status(stream.status());
  }
  // Nothing reaches the client before the first complete event, so a failure up to here
  // is still retried (SPEC section 4).
  while (sse_event_end(out.stream_prefix) == std::string::npos) {
    auto chunk = co_await stream.next();
    if (!chunk) {
      out.failure = std::move(chunk.error());
      co_return true;
    }
    if (!chunk.value()) {
      out.failure = upstream::Failure{upstream::FailureKind::reset, "the upstream ended the stream before any event"};
      co_return true;
    }
    out.stream_prefix.append(**chunk);
  }
  out.stream.emplace(std::move(stream));
  co_return false;
}

asio::awaitable<std::optional<HttpResponse>> Gateway::handle_chat(Exchange& ex, HttpRequest& request,
                                                                  Connection& connection) {
  ex.is_chat = true;
  // Chat calls only: a scrape of /metrics does not count itself.
  ++metrics_.inflight();
  struct InflightDown {
    std::atomic<long>& n;
    ~InflightDown() { --n; }
  } inflight_down{metrics_.inflight()};
  WorkerState& worker = *workers_[connection.worker_index];
  const unsigned version = request.version();
  const double arrived_unix = unix_now();

  auto planned = plan_call(config_, worker.request_parser, request.body());
  if (auto* error = std::get_if<ApiError>(&planned)) {
    metrics_.record_rejection(error->code.empty() ? "invalid_request" : error->code, error->status);
    ex.error_type = error->code;
    co_return error_response(*error, version);
  }
  CallPlan plan = std::move(std::get<CallPlan>(planned));
  if (const auto health = ledger_.health(); !health.healthy) {
    metrics_.record_rejection("ledger_unavailable", 503);
    co_return error_response(ApiError{503, "The gateway cannot record calls right now: " + health.reason,
                                      "server_error", "", "ledger_unavailable"},
                             version);
  }

  CallOutcome outcome = co_await run_attempts(ex, worker, plan, request.body());
  const routing::Candidate& served = *outcome.served;

  ledger::CallRecord rec;
  rec.id = ex.request_id;
  rec.timestamp = arrived_unix;
  rec.instance_id = options_.instance_id;
  rec.client_key_id = ex.key_id;
  rec.requested_model = plan.requested_model;
  rec.model = served.model;
  rec.route = outcome.route;
  rec.counted_prompt_tokens = served.prompt_tokens;
  rec.attempts = static_cast<int>(ex.attempts);
  rec.stream = plan.stream;
  ex.model = rec.model;
  ex.route = rec.route;

  if (outcome.stream) {
    co_await relay_stream(ex, connection, worker, plan, outcome, rec);
    finish_metrics(ex, outcome, rec.status);
    co_return std::nullopt;
  }

  HttpResponse res;
  std::string body;
  std::optional<pricing::Money> cost;
  const upstream::Response* response = outcome.response ? &*outcome.response : nullptr;
  if (response && response->status >= 200 && response->status < 300) {
    auto parsed = worker.response_parser.parse(response->body);
    std::optional<MeteredUsage> metered;
    if (!parsed.error()) metered = meter_completion(parsed.value_unsafe(), served);
    if (!metered) {
      res = error_response(ApiError{502, "The upstream returned a malformed chat completion (not the expected JSON).",
                                    "upstream_error", "", "upstream_malformed"},
                           version);
      rec.error_type = "upstream_malformed";
    } else {
      rec.usage = metered->usage;
      rec.usage_reported = metered->reported;
      body = std::move(outcome.response->body);
      res = HttpResponse{http::status::ok, version};
      res.set(http::field::content_type, kJson);
    }
  } else if (response) {
    res = upstream_error_response(worker, *outcome.response, version);
    rec.error_type = upstream_error_type(response->status);
  } else {
    res = failure_response(outcome.failure, version);
    rec.error_type = failure_error_type(outcome.failure);
  }
  cost = pricing::cost(served.rates, rec.usage);  // failed calls: zero tokens, zero cost
  rec.cost = cost;
  rec.baseline_cost = baseline_cost(rec.usage);
  rec.status = res.result_int();
  rec.latency_ms = ms_between(ex.start, Clock::now());
  if (!body.empty()) {
    add_gateway_fields(body, cost, rec.latency_ms);
    res.body() = std::move(body);
  }
  ex.prompt_tokens = rec.usage.prompt_tokens;  // what the ledger bills: none for a failed call
  ex.completion_tokens = rec.usage.completion_tokens;
  ex.cost = cost;
  ex.error_type = rec.error_type;
  co_await record_durably(ex, std::move(rec));

  res.set("x-turnout-model", ex.model);
  res.set("x-turnout-route", ex.route);
  res.set("x-turnout-prompt-tokens", std::to_string(served.prompt_tokens));
  res.set("x-turnout-attempts", std::to_string(ex.attempts));
  if (cost) res.set("x-turnout-cost-usd", pricing::format_usd(*cost));
  res.set("x-turnout-overhead-us", std::to_string(overhead_us(ex)));
  finish_metrics(ex, outcome, res.result_int());
  co_return res;
}

std::int64_t Gateway::overhead_us(const Exchange& ex) const {
  const auto overhead = Clock::now() - ex.start - ex.upstream - ex.waiting;
  return std::chrono::duration_cast<std::chrono::microseconds>(overhead).count();
}

std::optional<pricing::Money> Gateway::baseline_cost(const pricing::Usage& usage) const {
  const config::ModelConfig* baseline = config_.find_model(config_.routing.baseline_model);
  if (baseline == nullptr) return std::nullopt;
  return pricing::cost(baseline->rates, usage);
}

HttpResponse Gateway::upstream_error_response(WorkerState& worker, upstream::Response& response, unsigned version) {
  // Upstream 4xx, or a 429/5xx left after retries and fallbacks: passed through when its
  // body is JSON, else a 502 that says what came back.
  auto parsed = worker.response_parser.parse(response.body);
  if (!parsed.error() && parsed.value_unsafe().is_object()) {
    HttpResponse res{static_cast<http::status>(response.status), version};
    res.set(http::field::content_type, kJson);
    res.body() = std::move(response.body);
    if (response.retry_after) res.set(http::field::retry_after, *response.retry_after);
    return res;
  }
  return error_response(
      ApiError{502,
               fmt::format("The upstream answered HTTP {} with a body that is not JSON ({}).", response.status,
                           response.content_type.empty() ? "no content type" : response.content_type),
               "upstream_error", "", "upstream_malformed"},
      version);
}

std::string Gateway::upstream_error_type(unsigned status) {
  return status == 429 ? "upstream_rate_limited" : status >= 500 ? "upstream_server_error" : "upstream_client_error";
}

ApiError Gateway::failure_error(const std::optional<upstream::Failure>& failure) {
  const bool timeout = failure && failure->kind == upstream::FailureKind::timeout;
  const std::string detail = failure ? failure->message : "no provider could be reached";
  return ApiError{timeout ? 504u : 502u,
                  timeout ? "The upstream did not answer in time: " + detail
                          : "The upstream could not be reached: " + detail,
                  timeout ? "timeout_error" : "upstream_error", "",
                  timeout ? "upstream_timeout" : "upstream_unreachable"};
}

HttpResponse Gateway::failure_response(const std::optional<upstream::Failure>& failure, unsigned version) {
  return error_response(failure_error(failure), version);
}

std::string Gateway::failure_error_type(const std::optional<upstream::Failure>& failure) {
  return failure_error(failure).code;
}

asio::awaitable<void> Gateway::record_durably(const Exchange& ex, ledger::CallRecord rec) {
  const auto durable = co_await record(std::move(rec));
  if (!durable && options_.access_log)
    options_.access_log->error(R"({{"event":"ledger_error","request_id":"{}","message":"{}"}})", ex.request_id,
                               durable.error().message);
}

void Gateway::finish_metrics(const Exchange& ex, const CallOutcome& outcome, unsigned status) {
  RequestObservation obs;
  obs.model = ex.model;
  obs.route = ex.route;
  obs.status = status;
  obs.duration_s = std::chrono::duration<double>(Clock::now() - ex.start).count();
  obs.upstream_s = std::chrono::duration<double>(ex.upstream).count();
  obs.overhead_s = static_cast<double>(overhead_us(ex)) / 1e6;
  obs.prompt_tokens = ex.prompt_tokens;
  obs.completion_tokens = ex.completion_tokens;
  obs.cost = ex.cost;
  obs.retries = outcome.retries;
  obs.fallbacks = outcome.fallbacks;
  metrics_.record_request(obs);
}

asio::awaitable<Result<void>> Gateway::record(ledger::CallRecord rec) {
  // Resumes this coroutine on its own thread once the writer thread reports the commit.
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Result<void>)>(
      [this, &rec](auto handler) {
        using Handler = decltype(handler);
        auto shared = std::make_shared<Handler>(std::move(handler));
        ledger_.append(std::move(rec), [shared](Result<void> result) {
          auto executor = asio::get_associated_executor(*shared);
          asio::post(executor, [shared, result = std::move(result)]() mutable { (*shared)(std::move(result)); });
        });
      },
      asio::use_awaitable);
}

HttpResponse Gateway::handle_route(Exchange& ex, const HttpRequest& request, WorkerState& worker) {
  auto planned = plan_call(config_, worker.request_parser, request.body());
  if (auto* error = std::get_if<ApiError>(&planned)) {
    metrics_.record_rejection(error->code.empty() ? "invalid_request" : error->code, error->status);
    return error_response(*error, request.version());
  }
  const CallPlan& plan = std::get<CallPlan>(planned);
  ex.model = plan.decision.primary.model;
  ex.route = plan.decision.primary.route;
  ex.prompt_tokens = plan.decision.primary.prompt_tokens;
  return json_response(http::status::ok, request.version(), route_json(plan));
}

HttpResponse Gateway::handle_models(const HttpRequest& request) const {
  std::string body = R"({"object":"list","data":[)";
  bool first = true;
  auto add = [&](std::string_view id, std::string_view owner) {
    if (!first) body.push_back(',');
    first = false;
    body += R"({"id":)";
    append_json_string(body, id);
    body += R"(,"object":"model","created":0,"owned_by":)";
    append_json_string(body, owner);
    body.push_back('}');
  };
  for (const auto& alias : config_.routing.aliases) add(alias, "turnout");
  for (const auto& [name, model] : config_.models) add(name, model.provider);
  body += "]}";
  return json_response(http::status::ok, request.version(), std::move(body));
}

HttpResponse Gateway::handle_health(const HttpRequest& request) const {
  const auto health = ledger_.health();
  std::string body = R"({"status":)";
  body += health.healthy ? R"("healthy")" : R"("unhealthy")";
  body += R"(,"ledger":)";
  append_json_string(body, health.healthy ? "ok" : health.reason);
  if (!health.healthy) {
    body += R"(,"reason":)";
    append_json_string(body, "ledger not writable: " + health.reason);
  }
  append_cooldowns_json(body);
  body += fmt::format(R"(,"instance_id":"{}","version":"{}","uptime_s":{:.1f},"in_flight":{}}})", options_.instance_id,
                      TURNOUT_VERSION_STRING,
                      std::chrono::duration<double>(Clock::now() - started_).count(), metrics_.inflight_value());
  return json_response(health.healthy ? http::status::ok : http::status::service_unavailable, request.version(),
                       std::move(body));
}

void Gateway::append_cooldowns_json(std::string& body) const {
  // Cooling-down models do not make the gateway unhealthy: the others still answer.
  const auto now = Clock::now();
  const double now_unix = unix_now();
  body += R"(,"cooldowns":{)";
  bool first = true;
  for (const auto& state : cooldowns_.snapshot(now)) {
    if (!state.cooling_down) continue;
    if (!first) body.push_back(',');
    first = false;
    append_json_string(body, state.model);
    const double until_unix = now_unix + std::chrono::duration<double>(state.until - now).count();
    body += fmt::format(R"(:{{"until":{:.3f},"failures":{}}})", until_unix, state.consecutive_failures);
  }
  body.push_back('}');
}

HttpResponse Gateway::handle_metrics(const HttpRequest& request) const {
  HttpResponse res{http::status::ok, request.version()};
  res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.body() = metrics_.render();
  append_cooldown_metrics(res.body(), cooldowns_.snapshot(Clock::now()));
  return res;
}

asio::awaitable<HttpResponse> Gateway::handle_stats(Exchange& ex, const HttpRequest& request) {
  (void)ex;
  ledger::StatsQuery query;
  auto bad = [&](std::string param, std::string message) {
    metrics_.record_rejection("invalid_stats_query", 400);
    return error_response(ApiError{400, std::move(message), "invalid_request_error", std::move(param), "invalid_value"},
                          request.version());
  };
  auto target = boost::urls::parse_origin_form(request.target());
  if (!target) co_return bad("", "The request target is not a valid URL.");
  for (const auto& param : target->params()) {
    if (param.key == "since" || param.key == "until") {
      auto t = parse_time_param(param.value);
      if (!t) co_return bad(param.key, fmt::format("Invalid '{}': expected unix seconds or an RFC 3339 time.", param.key));
      (param.key == "since" ? query.since : query.until) = *t;
    } else if (param.key == "recent") {
      std::size_t n = 0;
      const auto& v = param.value;
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc() || ptr != v.data() + v.size() || n > 10000)
        co_return bad("recent", "Invalid 'recent': expected an integer from 0 to 10000.");
      query.recent = n;
    }
  }
  // The query runs on the blocking pool; the result is posted back to this loop.
  auto report = co_await asio::async_initiate<decltype(asio::use_awaitable), void(Result<ledger::StatsReport>)>(
      [this, query](auto handler) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        asio::post(*blocking_pool_, [this, query, shared] {
          auto result = ledger_.stats(query);
          auto executor = asio::get_associated_executor(*shared);
          asio::post(executor, [shared, result = std::move(result)]() mutable { (*shared)(std::move(result)); });
        });
      },
      asio::use_awaitable);
  if (!report)
    co_return error_response(ApiError{503, "The ledger could not be read: " + report.error().message, "server_error", "",
                                      "ledger_unavailable"},
                             request.version());
  co_return json_response(http::status::ok, request.version(), ledger::render_stats_json(*report));
}

void Gateway::log_access(const Exchange& ex, unsigned status) const {
  if (!options_.access_log) return;
  std::string line = R"({"ts":)";
  line += fmt::format("{:.6f}", unix_now());
  line += R"(,"request_id":)";
  append_json_string(line, ex.request_id);
  line += R"(,"method":)";
  append_json_string(line, ex.method);
  line += R"(,"path":)";
  append_json_string(line, ex.path);
  line += fmt::format(R"(,"status":{},"latency_ms":{:.3f})", status, ms_between(ex.start, Clock::now()));
  if (!ex.key_id.empty()) {
    line += R"(,"key_id":)";
    append_json_string(line, ex.key_id);
  }
  if (!ex.model.empty()) {
    line += R"(,"model":)";
    append_json_string(line, ex.model);
    line += R"(,"route":)";
    append_json_string(line, ex.route);
    line += fmt::format(R"(,"prompt_tokens":{},"completion_tokens":{})", ex.prompt_tokens, ex.completion_tokens);
  }
  if (ex.is_chat) {
    line += R"(,"cost_usd":)";
    line += ex.cost ? pricing::format_usd(*ex.cost) : "null";
    line += fmt::format(R"(,"attempts":{})", ex.attempts);
  }
  if (!ex.error_type.empty()) {
    line += R"(,"error":)";
    append_json_string(line, ex.error_type);
  }
  line.push_back('}');
  options_.access_log->info(line);
}

}  // namespace turnout::server
