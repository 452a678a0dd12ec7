#include "server/chat_request.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace turnout::server {
namespace {

using simdjson::dom::element;

constexpr std::uint64_t kMaxChoices = 128;  // OpenAI's own bound on n

bool is_known_role(std::string_view role) {
  static constexpr std::array<std::string_view, 6> roles = {"system", "developer", "user",
                                                            "assistant", "tool", "function"};
  for (auto r : roles)
    if (r == role) return true;
  return false;
}


}  // namespace

std::variant<const ChatRequest*, RequestError> RequestParser::parse(std::string_view body) {
  request_ = ChatRequest{};
  prompt_.clear();

  auto parsed_body = body_reader_.parse(body);
  if (auto* error = std::get_if<RequestError>(&parsed_body)) return std::move(*error);
  element root = std::get<element>(parsed_body);

  RequestError error;
  if (auto bad = read_model_name(root, request_.model)) return std::move(*bad);
  if (auto bad = read_bool(root, "stream", request_.stream)) return std::move(*bad);
  if (auto opts = root["stream_options"]; !opts.error() && !opts.value_unsafe().is_null()) {
    element o = opts.value_unsafe();
    if (!o.is_object()) return type_error("stream_options", "an object", o);
    if (auto iu = o["include_usage"]; !iu.error() && !iu.value_unsafe().is_null()) {
      if (!iu.value_unsafe().is_bool()) return type_error("stream_options.include_usage", "a boolean", iu.value_unsafe());
      request_.include_usage = iu.value_unsafe().get_bool().value_unsafe();
    }
  }
  std::optional<std::uint64_t> max_tokens, max_completion_tokens;
  if (auto bad = read_non_negative_integer(root, "max_tokens", max_tokens)) return std::move(*bad);
  if (auto bad = read_non_negative_integer(root, "max_completion_tokens", max_completion_tokens))
    return std::move(*bad);
  request_.requested_output_tokens = max_completion_tokens.value_or(max_tokens.value_or(0));
  // n choices: each may use the whole output allowance, so a budget hold multiplies by it.
  std::optional<std::uint64_t> choices;
  if (auto bad = read_non_negative_integer(root, "n", choices)) return std::move(*bad);
  if (choices && (*choices < 1 || *choices > kMaxChoices))
    return RequestError{fmt::format("Invalid 'n': expected an integer from 1 to {}.", kMaxChoices), "n",
                        "invalid_value"};
  request_.choices = choices.value_or(1);

  auto messages = root["messages"];
  if (messages.error()) return missing_parameter("messages");
  if (!messages.value_unsafe().is_array()) return type_error("messages", "an array", messages.value_unsafe());
  if (!validate_messages(messages.value_unsafe().get_array().value_unsafe(), error)) return error;

  if (auto tools = root["tools"]; !tools.error() && !tools.value_unsafe().is_null()) {
    if (!validate_tools(tools.value_unsafe(), error)) return error;
  }
  request_.prompt.messages = prompt_.messages;
  request_.prompt.tools = prompt_.tool_definitions.views();
  return &request_;
}

bool RequestParser::validate_messages(simdjson::dom::array messages, RequestError& error) {
  if (messages.size() == 0) {
    error = RequestError{"Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                         "messages", "empty_array"};
    return false;
  }
  // Spans are fixed up after all vectors are filled (they may reallocate while filling).
  struct Ranges {
    std::size_t parts_begin, parts_end, calls_begin, calls_end;
  };
  std::vector<Ranges> ranges;
  ranges.reserve(messages.size());

  std::size_t index = 0;
  for (element msg : messages) {
    const std::string at = fmt::format("messages[{}]", index++);
    if (!msg.is_object()) {
      error = type_error(at, "an object", msg);
      return false;
    }
    tokenizer::MessageView view;
    Ranges r{prompt_.parts.size(), prompt_.parts.size(), prompt_.tool_calls.size(), prompt_.tool_calls.size()};

    auto role = msg["role"];
    if (role.error()) {
      error = missing_parameter(at + ".role");
      return false;
    }
    if (!role.value_unsafe().is_string()) {
      error = type_error(at + ".role", "a string", role.value_unsafe());
      return false;
    }
    view.role = role.value_unsafe().get_string().value_unsafe();
    if (!is_known_role(view.role)) {
      error = RequestError{
          fmt::format("Invalid value: '{}'. Supported values are: 'system', 'developer', 'user', 'assistant', 'tool' and 'function'.",
                      view.role),
          at + ".role", "invalid_value"};
      return false;
    }

    auto content = msg["content"];
    const bool content_optional = view.role == "assistant";
    if (content.error() || content.value_unsafe().is_null()) {
      if (!content_optional) {
        error = missing_parameter(at + ".content");
        return false;
      }
    } else if (content.value_unsafe().is_string()) {
      view.content = content.value_unsafe().get_string().value_unsafe();
    } else if (content.value_unsafe().is_array()) {
      std::size_t part_index = 0;
      const simdjson::dom::array part_array = content.value_unsafe().get_array().value_unsafe();
      for (element part : part_array) {
        const std::string part_at = fmt::format("{}.content[{}]", at, part_index++);
        if (!part.is_object()) {
          error = type_error(part_at, "an object", part);
          return false;
        }
        auto type = part["type"];
        if (type.error() || !type.value_unsafe().is_string()) {
          error = missing_parameter(part_at + ".type");
          return false;
        }
        const std::string_view type_str = type.value_unsafe().get_string().value_unsafe();
        tokenizer::ContentPartView pv;
        if (type_str == "text") {
          auto text = part["text"];
          if (text.error() || !text.value_unsafe().is_string()) {
            error = RequestError{fmt::format("Invalid '{}.text': expected a string.", part_at), part_at + ".text",
                                 "invalid_type"};
            return false;
          }
          pv.kind = tokenizer::ContentPartView::Kind::text;
          pv.text = text.value_unsafe().get_string().value_unsafe();
        } else if (type_str == "image_url") {
          auto image = part["image_url"];
          element url_el;
          bool ok = !image.error();
          if (ok && image.value_unsafe().is_string()) {
            url_el = image.value_unsafe();
          } else if (ok && image.value_unsafe().is_object()) {
            auto url = image.value_unsafe()["url"];
            ok = !url.error();
            if (ok) url_el = url.value_unsafe();
            if (auto detail = image.value_unsafe()["detail"]; !detail.error() && detail.value_unsafe().is_string())
              pv.detail = image_detail(detail.value_unsafe().get_string().value_unsafe());
          } else {
            ok = false;
          }
          if (!ok || !url_el.is_string()) {
            error = RequestError{fmt::format("Invalid '{}.image_url': expected an object with a string 'url'.", part_at),
                                 part_at + ".image_url", "invalid_type"};
            return false;
          }
          pv.kind = tokenizer::ContentPartView::Kind::image;
          pv.image_url = url_el.get_string().value_unsafe();
        } else {
          // Audio, files, refusals...: forwarded untouched, not counted as text.
          pv.kind = tokenizer::ContentPartView::Kind::other;
        }
        prompt_.parts.push_back(pv);
      }
      r.parts_end = prompt_.parts.size();
    } else {
      error = type_error(at + ".content", "a string or an array of content parts", content.value_unsafe());
      return false;
    }

    if (auto name = msg["name"]; !name.error() && !name.value_unsafe().is_null()) {
      if (!name.value_unsafe().is_string()) {
        error = type_error(at + ".name", "a string", name.value_unsafe());
        return false;
      }
      view.name = name.value_unsafe().get_string().value_unsafe();
    }
    if (auto id = msg["tool_call_id"]; !id.error() && !id.value_unsafe().is_null()) {
      if (!id.value_unsafe().is_string()) {
        error = type_error(at + ".tool_call_id", "a string", id.value_unsafe());
        return false;
      }
      view.tool_call_id = id.value_unsafe().get_string().value_unsafe();
    }
    if (auto calls = msg["tool_calls"]; !calls.error() && !calls.value_unsafe().is_null()) {
      if (!calls.value_unsafe().is_array()) {
        error = type_error(at + ".tool_calls", "an array", calls.value_unsafe());
        return false;
      }
      std::size_t call_index = 0;
      const simdjson::dom::array call_array = calls.value_unsafe().get_array().value_unsafe();
      for (element call : call_array) {
        const std::string call_at = fmt::format("{}.tool_calls[{}]", at, call_index++);
        if (!call.is_object()) {
          error = type_error(call_at, "an object", call);
          return false;
        }
        tokenizer::ToolCallView cv;
        if (auto v = call["id"]; !v.error() && v.value_unsafe().is_string()) cv.id = v.value_unsafe().get_string().value_unsafe();
        if (auto v = call["type"]; !v.error() && v.value_unsafe().is_string())
          cv.type = v.value_unsafe().get_string().value_unsafe();
        auto fn = call["function"];
        if (fn.error() || !fn.value_unsafe().is_object()) {
          error = missing_parameter(call_at + ".function");
          return false;
        }
        if (auto v = fn.value_unsafe()["name"]; !v.error() && v.value_unsafe().is_string())
          cv.function_name = v.value_unsafe().get_string().value_unsafe();
        if (auto v = fn.value_unsafe()["arguments"]; !v.error() && v.value_unsafe().is_string())
          cv.arguments = v.value_unsafe().get_string().value_unsafe();
        prompt_.tool_calls.push_back(cv);
      }
      r.calls_end = prompt_.tool_calls.size();
    }
    prompt_.messages.push_back(view);
    ranges.push_back(r);
  }
  for (std::size_t i = 0; i < prompt_.messages.size(); ++i) {
    const Ranges& r = ranges[i];
    prompt_.messages[i].parts = std::span(prompt_.parts).subspan(r.parts_begin, r.parts_end - r.parts_begin);
    prompt_.messages[i].tool_calls = std::span(prompt_.tool_calls).subspan(r.calls_begin, r.calls_end - r.calls_begin);
  }
  return true;
}

bool RequestParser::validate_tools(element tools, RequestError& error) {
  if (!tools.is_array()) {
    error = type_error("tools", "an array", tools);
    return false;
  }
  std::size_t index = 0;
  const simdjson::dom::array tool_array = tools.get_array().value_unsafe();
  for (element tool : tool_array) {
    const std::string at = fmt::format("tools[{}]", index++);
    if (!tool.is_object()) {
      error = type_error(at, "an object", tool);
      return false;
    }
    auto fn = tool["function"];
    if (fn.error() || !fn.value_unsafe().is_object()) {
      // Non-function tools (e.g. custom tools) are forwarded but not counted.
      continue;
    }
    element f = fn.value_unsafe();
    auto name = f["name"];
    if (name.error() || !name.value_unsafe().is_string()) {
      error = missing_parameter(at + ".function.name");
      return false;
    }
    prompt_.tool_definitions.add_function(name.value_unsafe().get_string().value_unsafe(), f);
  }
  return true;
}

}  // namespace turnout::server
