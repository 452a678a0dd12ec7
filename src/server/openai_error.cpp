#include "server/openai_error.hpp"

#include "common/json_text.hpp"

namespace turnout::server {

std::string error_body(const ApiError& error) {
  std::string out;
  out.reserve(96 + error.message.size());
  out += R"({"error":{"message":)";
  append_json_string(out, error.message);
  out += R"(,"type":)";
  append_json_string(out, error.type);
  out += R"(,"param":)";
  if (error.param.empty()) {
    out += "null";
  } else {
    append_json_string(out, error.param);
  }
  out += R"(,"code":)";
  if (error.code.empty()) {
    out += "null";
  } else {
    append_json_string(out, error.code);
  }
  out += "}}";
  return out;
}

HttpResponse error_response(const ApiError& error, unsigned version) {
  HttpResponse res{static_cast<http::status>(error.status), version};
  res.set(http::field::content_type, "application/json");
  res.body() = error_body(error);
  return res;
}

}  // namespace turnout::server
