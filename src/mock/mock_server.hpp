#pragma once
// The mock upstream's HTTP server, on Boost.Beast with C++20 coroutines and N event-loop
// threads. Endpoints:
//   POST /v1/chat/completions, /chat/completions,
//        /openai/deployments/{d}/chat/completions?api-version=...  (Azure; model defaults to d)
//                               chat.completion JSON, or SSE with stream: true
//   POST /v1/responses, /responses    a Responses `response` object, or its typed SSE
//                               events with stream: true (responses_reply.hpp)
//   POST /v1/embeddings, /embeddings  embeddings list (embeddings_reply.hpp)
//   GET  /v1/models, /models    OpenAI list format
//   GET|POST /_mock/config      read / replace the settings (mock_settings.hpp; absent keys
//                               take their start-up value, fail_first counts from zero)
//   POST /_mock/reset           start-up settings, no recordings, zero counters
//   GET|DELETE /_mock/requests  {"requests":[{method,target,headers,body,time}]} / clear
//   GET  /_mock/stats           call counters (per model), faults injected, stream outcomes
// Control calls are neither recorded nor counted. Faults strike valid chat calls only
// (an invalid body is always a 400).
#include "common/result.hpp"
#include "mock/mock_settings.hpp"
#include "mock/mock_state.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace turnout::mock {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9000;  // 0 picks a free port
  unsigned threads = 1;
  RecordingLimits recording;
  std::size_t max_body_bytes = 256u << 20;
};

class MockServer {
 public:
  // Binds and starts serving on background threads.
  static Result<std::unique_ptr<MockServer>> start(const ServerOptions& options, MockSettings startup);
  ~MockServer();
  MockServer(const MockServer&) = delete;
  MockServer& operator=(const MockServer&) = delete;

  std::uint16_t port() const;
  const std::string& host() const;
  MockState& state();

  // Stops serving (open connections are dropped) and joins the threads. Idempotent.
  void stop();

  struct Impl;

 private:
  explicit MockServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace turnout::mock
