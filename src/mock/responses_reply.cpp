#include "mock/responses_reply.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

namespace turnout::mock {
namespace json = boost::json;

namespace {

InvalidRequest invalid(std::string message, std::string param) {
  return InvalidRequest{std::move(message), std::move(param)};
}

const json::string* string_at(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value ? value->if_string() : nullptr;
}

// A message item's content as chat content: a string, or text and image parts.
Result<json::value, InvalidRequest> chat_content(const json::value& content, const std::string& at) {
  if (content.is_string()) return content;
  const auto* parts = content.if_array();
  if (!parts) return invalid("'" + at + ".content' must be a string or an array.", at + ".content");
  json::array chat_parts;
  for (const auto& part_value : *parts) {
    const auto* part = part_value.if_object();
    const auto* type = part ? string_at(*part, "type") : nullptr;
    if (!type) return invalid("Every part of '" + at + ".content' needs a 'type'.", at + ".content");
    if (*type == "input_text" || *type == "output_text") {
      const auto* text = string_at(*part, "text");
      if (!text) return invalid("'" + at + ".content' text parts need a 'text'.", at + ".content");
      chat_parts.emplace_back(json::object{{"type", "text"}, {"text", *text}});
    } else if (*type == "input_image") {
      if (const auto* url = string_at(*part, "image_url")) {
        json::object image{{"url", *url}};
        if (const auto* detail = string_at(*part, "detail")) image["detail"] = *detail;
        chat_parts.emplace_back(json::object{{"type", "image_url"}, {"image_url", std::move(image)}});
      }
    }
  }
  return json::value(std::move(chat_parts));
}

json::object usage_object(const Usage& usage) {
  return json::object{
      {"input_tokens", usage.prompt_tokens},
      {"input_tokens_details", json::object{{"cached_tokens", usage.cached_tokens}}},
      {"output_tokens", usage.completion_tokens},
      {"output_tokens_details", json::object{{"reasoning_tokens", 0}}},
      {"total_tokens", usage.prompt_tokens + usage.completion_tokens},
  };
}

std::string message_id(const GeneratedCompletion& completion) { return "msg_" + completion.id; }

json::array output_items(const GeneratedCompletion& completion) {
  json::array output;
  const GeneratedChoice& choice = completion.choices.front();
  if (choice.tool_call) {
    output.emplace_back(json::object{{"type", "function_call"},
                                     {"id", "fc_" + completion.id},
                                     {"call_id", choice.tool_call->id},
                                     {"name", choice.tool_call->name},
                                     {"arguments", choice.tool_call->arguments},
                                     {"status", "completed"}});
  } else {
    output.emplace_back(json::object{
        {"type", "message"},
        {"id", message_id(completion)},
        {"status", "completed"},
        {"role", "assistant"},
        {"content", json::array{json::object{{"type", "output_text"}, {"text", choice.content}, {"annotations", json::array{}}}}}});
  }
  return output;
}

json::object response_object(const GeneratedCompletion& completion, std::string_view status, bool with_output) {
  const bool cut = !completion.choices.empty() && completion.choices.front().finish_reason == "length";
  json::object response{
      {"id", completion.id},
      {"object", "response"},
      {"created_at", completion.created},
      {"status", status == "completed" && cut ? "incomplete" : status},
      {"error", nullptr},
      {"incomplete_details", cut && status == "completed" ? json::value(json::object{{"reason", "max_output_tokens"}})
                                                           : json::value(nullptr)},
      {"model", completion.model},
      {"output", with_output ? output_items(completion) : json::array{}},
      {"parallel_tool_calls", true},
      {"service_tier", "default"},
      {"text", json::object{{"format", json::object{{"type", "text"}}}}},
      {"usage", with_output ? json::value(usage_object(completion.usage)) : json::value(nullptr)},
  };
  return response;
}

}  // namespace

Result<json::value, InvalidRequest> chat_equivalent(const json::value& responses_body) {
  const auto* body = responses_body.if_object();
  if (!body) return invalid("The request body must be a JSON object.", "");
  json::array messages;
  if (const auto* instructions = string_at(*body, "instructions"))
    messages.emplace_back(json::object{{"role", "system"}, {"content", *instructions}});
  const auto* input = body->if_contains("input");
  const bool continuation = body->contains("previous_response_id") || body->contains("conversation");
  if (!input && !continuation) return invalid("Missing required parameter: 'input'.", "input");
  if (input && input->is_string()) {
    messages.emplace_back(json::object{{"role", "user"}, {"content", input->get_string()}});
  } else if (input && input->is_array()) {
    const auto& items = input->get_array();
    for (std::size_t i = 0; i < items.size(); ++i) {
      const std::string at = fmt::format("input[{}]", i);
      const auto* item = items[i].if_object();
      if (!item) return invalid("'" + at + "' must be an object.", at);
      const auto* type = string_at(*item, "type");
      if (!type || *type == "message") {
        const auto* role = string_at(*item, "role");
        const auto* content = item->if_contains("content");
        if (!role || !content) return invalid("'" + at + "' needs a 'role' and a 'content'.", at);
        auto chat = chat_content(*content, at);
        if (!chat) return chat.error();
        messages.emplace_back(json::object{{"role", *role}, {"content", std::move(*chat)}});
      } else if (*type == "function_call") {
        json::object call{{"id", item->contains("call_id") ? item->at("call_id") : json::value("")},
                          {"type", "function"},
                          {"function", json::object{{"name", item->contains("name") ? item->at("name") : json::value("")},
                                                    {"arguments", item->contains("arguments") ? item->at("arguments")
                                                                                              : json::value("")}}}};
        messages.emplace_back(
            json::object{{"role", "assistant"}, {"content", nullptr}, {"tool_calls", json::array{std::move(call)}}});
      } else if (*type == "function_call_output") {
        const auto* output = string_at(*item, "output");
        messages.emplace_back(json::object{{"role", "tool"},
                                           {"tool_call_id", item->contains("call_id") ? item->at("call_id") : json::value("")},
                                           {"content", output ? json::value(*output) : json::value("")}});
      }
    }
  } else if (input) {
    return invalid("'input' must be a string or an array.", "input");
  }
  if (messages.empty()) messages.emplace_back(json::object{{"role", "user"}, {"content", ""}});

  json::object chat{{"messages", std::move(messages)}};
  if (const auto* model = body->if_contains("model")) chat["model"] = *model;
  if (const auto* limit = body->if_contains("max_output_tokens")) chat["max_completion_tokens"] = *limit;
  if (const auto* tools = body->if_contains("tools"); tools && tools->is_array()) {
    json::array chat_tools;
    for (const auto& tool_value : tools->get_array()) {
      const auto* tool = tool_value.if_object();
      if (!tool || !string_at(*tool, "type") || *string_at(*tool, "type") != "function") continue;
      json::object function{{"name", tool->contains("name") ? tool->at("name") : json::value("")}};
      if (const auto* description = tool->if_contains("description")) function["description"] = *description;
      if (const auto* parameters = tool->if_contains("parameters")) function["parameters"] = *parameters;
      chat_tools.emplace_back(json::object{{"type", "function"}, {"function", std::move(function)}});
    }
    if (!chat_tools.empty()) chat["tools"] = std::move(chat_tools);
  }
  if (const auto* choice = body->if_contains("tool_choice"); choice && choice->is_string()) chat["tool_choice"] = *choice;
  return json::value(std::move(chat));
}

std::string response_json(const GeneratedCompletion& completion) {
  return json::serialize(response_object(completion, "completed", true));
}

std::vector<StreamEvent> response_stream_events(const GeneratedCompletion& completion, std::uint32_t chunks,
                                                bool malformed_event) {
  std::vector<StreamEvent> events;
  std::uint64_t sequence = 0;
  auto add = [&](std::string_view type, json::object data, bool paced = false) {
    data["type"] = type;
    data["sequence_number"] = sequence++;
    events.push_back(StreamEvent{fmt::format("event: {}\ndata: {}\n\n", type, json::serialize(data)), paced});
  };
  add("response.created", json::object{{"response", response_object(completion, "in_progress", false)}});
  add("response.in_progress", json::object{{"response", response_object(completion, "in_progress", false)}});
  const GeneratedChoice& choice = completion.choices.front();
  json::value item = output_items(completion).front();
  if (choice.tool_call) {
    json::object added = item.as_object();
    added["arguments"] = "";
    added["status"] = "in_progress";
    add("response.output_item.added", json::object{{"output_index", 0}, {"item", std::move(added)}});
    bool first = true;
    for (std::string_view piece : split_for_stream(choice.tool_call->arguments, chunks)) {
      add("response.function_call_arguments.delta",
          json::object{{"item_id", "fc_" + completion.id}, {"output_index", 0}, {"delta", piece}}, true);
      if (first && malformed_event) events.push_back(StreamEvent{"event: response.output_text.delta\ndata: {\"type\":\n\n", false});
      first = false;
    }
    add("response.function_call_arguments.done",
        json::object{{"item_id", "fc_" + completion.id}, {"output_index", 0}, {"arguments", choice.tool_call->arguments}});
  } else {
    const std::string id = message_id(completion);
    add("response.output_item.added",
        json::object{{"output_index", 0},
                     {"item", json::object{{"type", "message"}, {"id", id}, {"status", "in_progress"},
                                           {"role", "assistant"}, {"content", json::array{}}}}});
    add("response.content_part.added",
        json::object{{"item_id", id}, {"output_index", 0}, {"content_index", 0},
                     {"part", json::object{{"type", "output_text"}, {"text", ""}, {"annotations", json::array{}}}}});
    bool first = true;
    for (std::string_view piece : split_for_stream(choice.content, chunks)) {
      add("response.output_text.delta",
          json::object{{"item_id", id}, {"output_index", 0}, {"content_index", 0}, {"delta", piece}, {"logprobs", json::array{}}},
          true);
      if (first && malformed_event) events.push_back(StreamEvent{"event: response.output_text.delta\ndata: {\"type\":\n\n", false});
      first = false;
    }
    add("response.output_text.done",
        json::object{{"item_id", id}, {"output_index", 0}, {"content_index", 0}, {"text", choice.content}, {"logprobs", json::array{}}});
    add("response.content_part.done",
        json::object{{"item_id", id}, {"output_index", 0}, {"content_index", 0},
                     {"part", json::object{{"type", "output_text"}, {"text", choice.content}, {"annotations", json::array{}}}}});
  }
  add("response.output_item.done", json::object{{"output_index", 0}, {"item", std::move(item)}});
  json::object final_response = response_object(completion, "completed", true);
  const std::string final_type = final_response.at("status").as_string() == "incomplete" ? "response.incomplete" : "response.completed";
  add(final_type, json::object{{"response", std::move(final_response)}});
  return events;
}

}  // namespace turnout::mock
