#include "server/responses_request.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace turnout::server {
namespace {

using simdjson::dom::element;

std::optional<std::string_view> string_member(element object, std::string_view key) {
  auto value = object[key];
  if (value.error() || !value.value_unsafe().is_string()) return std::nullopt;
  return value.value_unsafe().get_string().value_unsafe();
}

bool is_message_role(std::string_view role) {
  static constexpr std::array<std::string_view, 4> roles{"user", "assistant", "system", "developer"};
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}


}  // namespace

std::variant<const ResponsesRequest*, RequestError> ResponsesRequestParser::parse(std::string_view body) {
  request_ = ResponsesRequest{};
  prompt_.clear();
  part_ranges_.clear();
  call_ranges_.clear();

  auto parsed_body = body_reader_.parse(body);
  if (auto* error = std::get_if<RequestError>(&parsed_body)) return std::move(*error);
  const element root = std::get<element>(parsed_body);

  if (auto bad = read_model_name(root, request_.model)) return std::move(*bad);
  if (auto bad = read_bool(root, "stream", request_.stream)) return std::move(*bad);
  std::optional<std::uint64_t> max_output_tokens;
  if (auto bad = read_non_negative_integer(root, "max_output_tokens", max_output_tokens)) return std::move(*bad);
  request_.requested_output_tokens = max_output_tokens.value_or(0);
  if (auto previous = root["previous_response_id"]; !previous.error() && !previous.value_unsafe().is_null()) {
    if (!previous.value_unsafe().is_string())
      return type_error("previous_response_id", "a string", previous.value_unsafe());
    request_.continuation = true;
  }
  if (auto conversation = root["conversation"]; !conversation.error() && !conversation.value_unsafe().is_null()) {
    if (!conversation.value_unsafe().is_string() && !conversation.value_unsafe().is_object())
      return type_error("conversation", "a string or an object", conversation.value_unsafe());
    request_.continuation = true;
  }

  RequestError error;
  if (auto instructions = root["instructions"]; !instructions.error() && !instructions.value_unsafe().is_null()) {
    if (!instructions.value_unsafe().is_string())
      return type_error("instructions", "a string", instructions.value_unsafe());
    // Counted as the system message it stands for.
    tokenizer::MessageView system;
    system.role = "system";
    system.content = instructions.value_unsafe().get_string().value_unsafe();
    prompt_.messages.push_back(system);
    part_ranges_.push_back({prompt_.parts.size(), prompt_.parts.size()});
    call_ranges_.push_back({prompt_.tool_calls.size(), prompt_.tool_calls.size()});
  }
  auto input = root["input"];
  if (input.error() || input.value_unsafe().is_null()) {
    if (!request_.continuation) return missing_parameter("input");
  } else if (!read_input(input.value_unsafe(), error)) {
    return error;
  }
  if (auto tools = root["tools"]; !tools.error() && !tools.value_unsafe().is_null()) {
    if (!read_tools(tools.value_unsafe(), error)) return error;
  }

  for (std::size_t i = 0; i < prompt_.messages.size(); ++i) {
    prompt_.messages[i].parts = std::span<const tokenizer::ContentPartView>(prompt_.parts).subspan(
        part_ranges_[i].begin, part_ranges_[i].end - part_ranges_[i].begin);
    prompt_.messages[i].tool_calls = std::span<const tokenizer::ToolCallView>(prompt_.tool_calls).subspan(
        call_ranges_[i].begin, call_ranges_[i].end - call_ranges_[i].begin);
  }
  request_.prompt.messages = prompt_.messages;
  request_.prompt.tools = prompt_.tool_definitions.views();
  return &request_;
}

bool ResponsesRequestParser::read_input(element input, RequestError& error) {
  if (input.is_string()) {
    tokenizer::MessageView user;
    user.role = "user";
    user.content = input.get_string().value_unsafe();
    prompt_.messages.push_back(user);
    part_ranges_.push_back({prompt_.parts.size(), prompt_.parts.size()});
    call_ranges_.push_back({prompt_.tool_calls.size(), prompt_.tool_calls.size()});
    return true;
  }
  if (!input.is_array()) {
    error = type_error("input", "a string or an array of input items", input);
    return false;
  }
  std::size_t index = 0;
  const simdjson::dom::array items = input.get_array().value_unsafe();
  for (element item : items) {
    const std::string at = fmt::format("input[{}]", index++);
    if (!item.is_object()) {
      error = type_error(at, "an object", item);
      return false;
    }
    const std::string_view type = string_member(item, "type").value_or("message");
    const std::size_t parts_before = prompt_.parts.size();
    const std::size_t calls_before = prompt_.tool_calls.size();
    if (type == "message") {
      if (!read_message(item, at, error)) return false;
    } else if (type == "function_call") {
      // An earlier turn's call, counted as the assistant tool call it is in chat.
      const auto name = string_member(item, "name");
      const auto arguments = string_member(item, "arguments");
      if (!name || !arguments) {
        error = missing_parameter(at + (name ? ".arguments" : ".name"));
        return false;
      }
      tokenizer::ToolCallView call;
      call.id = string_member(item, "call_id").value_or("");
      call.type = "function";
      call.function_name = *name;
      call.arguments = *arguments;
      prompt_.tool_calls.push_back(call);
      tokenizer::MessageView assistant;
      assistant.role = "assistant";
      prompt_.messages.push_back(assistant);
      request_.count_estimated = true;  // OpenAI publishes no formula for tool calls
    } else if (type == "function_call_output") {
      auto output = item["output"];
      if (output.error()) {
        error = missing_parameter(at + ".output");
        return false;
      }
      tokenizer::MessageView tool;
      tool.role = "tool";
      tool.tool_call_id = string_member(item, "call_id");
      if (output.value_unsafe().is_string()) tool.content = output.value_unsafe().get_string().value_unsafe();
      prompt_.messages.push_back(tool);
      request_.count_estimated = true;
    } else {
      // Reasoning items, item references, built-in tool calls...: forwarded, not counted.
      request_.count_estimated = true;
      continue;
    }
    part_ranges_.push_back({parts_before, prompt_.parts.size()});
    call_ranges_.push_back({calls_before, prompt_.tool_calls.size()});
  }
  return true;
}

bool ResponsesRequestParser::read_message(element item, const std::string& at, RequestError& error) {
  const auto role = string_member(item, "role");
  if (!role) {
    error = missing_parameter(at + ".role");
    return false;
  }
  if (!is_message_role(*role)) {
    error = RequestError{fmt::format("Invalid value: '{}'. Supported values are: 'user', 'assistant', 'system' and "
                                     "'developer'.",
                                     *role),
                         at + ".role", "invalid_value"};
    return false;
  }
  tokenizer::MessageView message;
  message.role = *role;
  auto content = item["content"];
  if (content.error() || content.value_unsafe().is_null()) {
    error = missing_parameter(at + ".content");
    return false;
  }
  if (content.value_unsafe().is_string()) {
    message.content = content.value_unsafe().get_string().value_unsafe();
    prompt_.messages.push_back(message);
    return true;
  }
  if (!content.value_unsafe().is_array()) {
    error = type_error(at + ".content", "a string or an array of content items", content.value_unsafe());
    return false;
  }
  std::size_t index = 0;
  const simdjson::dom::array part_array = content.value_unsafe().get_array().value_unsafe();
  for (element part : part_array) {
    const std::string part_at = fmt::format("{}.content[{}]", at, index++);
    if (!part.is_object()) {
      error = type_error(part_at, "an object", part);
      return false;
    }
    const auto type = string_member(part, "type");
    if (!type) {
      error = missing_parameter(part_at + ".type");
      return false;
    }
    tokenizer::ContentPartView view;
    if (*type == "input_text" || *type == "output_text") {
      const auto text = string_member(part, "text");
      if (!text) {
        error = missing_parameter(part_at + ".text");
        return false;
      }
      view.kind = tokenizer::ContentPartView::Kind::text;
      view.text = *text;
    } else if (*type == "input_image") {
      // A URL (or data: URL) is counted by the image formula; a file_id's size is unknown.
      view.kind = tokenizer::ContentPartView::Kind::image;
      view.detail = image_detail(string_member(part, "detail"));
      if (const auto url = string_member(part, "image_url")) {
        view.image_url = *url;
      } else {
        request_.count_estimated = true;
      }
    } else {
      // input_file (its extracted text and page images are the provider's), refusals...
      view.kind = tokenizer::ContentPartView::Kind::other;
      request_.count_estimated = true;
    }
    prompt_.parts.push_back(view);
  }
  prompt_.messages.push_back(message);
  return true;
}

bool ResponsesRequestParser::read_tools(element tools, RequestError& error) {
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
    const auto type = string_member(tool, "type");
    if (!type) {
      error = missing_parameter(at + ".type");
      return false;
    }
    if (*type != "function") {
      request_.count_estimated = true;  // web_search, file_search, mcp...: the provider's own
      continue;
    }
    const auto name = string_member(tool, "name");
    if (!name) {
      error = missing_parameter(at + ".name");
      return false;
    }
    prompt_.tool_definitions.add_function(*name, tool);
  }
  return true;
}

}  // namespace turnout::server
