#pragma once
// Error responses in OpenAI's shape: {"error":{"message","type","param","code"}}.
#include "listener/http_server.hpp"

#include <string>
#include <string_view>

namespace turnout::server {

namespace http = boost::beast::http;
using listener::HttpResponse;

struct ApiError {
  unsigned status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // "" -> null
  std::string code;   // "" -> null
};

std::string error_body(const ApiError& error);
HttpResponse error_response(const ApiError& error, unsigned version);

}  // namespace turnout::server
