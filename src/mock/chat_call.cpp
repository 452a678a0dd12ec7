#include "mock/chat_call.hpp"

#include "common/json_text.hpp"

#include "tokenizer/chat_count.hpp"
#include "tokenizer/tokenizer.hpp"

#include <boost/json.hpp>

#include <stdexcept>
#include <vector>

namespace turnout::mock {
namespace json = boost::json;
namespace tk = turnout::tokenizer;

void throw_exception_from_error(const InvalidRequest& e, const boost::source_location& loc) {
  boost::throw_exception(std::invalid_argument(e.message), loc);
}

namespace {

InvalidRequest invalid(std::string message, std::string param = {}) {
  return InvalidRequest{std::move(message), std::move(param)};
}

std::string_view view_of(const json::string& s) { return {s.data(), s.size()}; }

// The string member `key` of `object`, if it is present and a string.
std::optional<std::string_view> string_member(const json::object& object, std::string_view key) {
  const auto* v = object.if_contains(key);
  if (!v || !v->is_string()) return std::nullopt;
  return view_of(v->get_string());
}

const json::object* object_member(const json::object& object, std::string_view key) {
  const auto* v = object.if_contains(key);
  return v ? v->if_object() : nullptr;
}

const json::array* array_member(const json::object& object, std::string_view key) {
  const auto* v = object.if_contains(key);
  return v ? v->if_array() : nullptr;
}

// The text of a message's content: the string itself, or its first text part.
std::string_view content_text(const json::object& message) {
  const auto* content = message.if_contains("content");
  if (!content) return {};
  if (content->is_string()) return view_of(content->get_string());
  if (const auto* parts = content->if_array()) {
    for (const auto& part : *parts) {
      const auto* p = part.if_object();
      if (p && string_member(*p, "type") == "text") return string_member(*p, "text").value_or("");
    }
  }
  return {};
}

Result<void, InvalidRequest> check_messages(const json::object& root) {
  const auto* messages_value = root.if_contains("messages");
  if (!messages_value) return invalid("Missing required parameter: 'messages'.", "messages");
  const auto* messages = messages_value->if_array();
  if (!messages) return invalid("Invalid type for 'messages': expected an array.", "messages");
  if (messages->empty()) return invalid("'messages' must contain at least one message.", "messages");
  for (std::size_t i = 0; i < messages->size(); ++i) {
    const std::string param = "messages[" + std::to_string(i) + "]";
    const auto* message = (*messages)[i].if_object();
    if (!message) return invalid("Invalid type for '" + param + "': expected an object.", param);
    if (!string_member(*message, "role"))
      return invalid("Missing required parameter: '" + param + ".role'.", param + ".role");
    const auto* content = message->if_contains("content");
    if (content && !content->is_string() && !content->is_array() && !content->is_null())
      return invalid("Invalid type for '" + param + ".content': expected a string or an array.",
                     param + ".content");
  }
  return {};
}

Result<std::optional<std::uint64_t>, InvalidRequest> read_max_tokens(const json::object& root) {
  for (std::string_view key : {"max_completion_tokens", "max_tokens"}) {
    const auto* v = root.if_contains(key);
    if (!v || v->is_null()) continue;
    const bool positive = (v->is_int64() && v->get_int64() > 0) || v->is_uint64();
    if (!positive) return invalid("Invalid '" + std::string(key) + "': expected a positive integer.", std::string(key));
    return std::optional<std::uint64_t>(v->to_number<std::uint64_t>());
  }
  return std::optional<std::uint64_t>();
}

// The function to call: tool_choice's named function, else the first function tool;
// none when there are no function tools or tool_choice is "none".
std::optional<ToolTarget> read_tool_target(const json::object& root) {
  const auto* tools = array_member(root, "tools");
  if (!tools) return std::nullopt;
  const auto* choice = root.if_contains("tool_choice");
  if (choice && choice->is_string() && choice->get_string() == "none") return std::nullopt;
  std::optional<std::string_view> wanted;
  if (const auto* choice_object = choice ? choice->if_object() : nullptr) {
    if (const auto* function = object_member(*choice_object, "function"))
      wanted = string_member(*function, "name");
  }
  for (const auto& tool : *tools) {
    const auto* t = tool.if_object();
    const auto* function = t ? object_member(*t, "function") : nullptr;
    if (!function) continue;
    const auto name = string_member(*function, "name");
    if (!name || (wanted && *wanted != *name)) continue;
    return ToolTarget{*name, function->if_contains("parameters")};
  }
  if (wanted) return ToolTarget{*wanted, nullptr};
  return std::nullopt;
}

void read_response_format(const json::object& root, ChatCall& call) {
  const auto* format = object_member(root, "response_format");
  if (!format) return;
  const auto type = string_member(*format, "type");
  if (type == "json_object") call.json_answer = true;
  if (type == "json_schema") {
    call.json_answer = true;
    if (const auto* schema_spec = object_member(*format, "json_schema"))
      call.answer_schema = schema_spec->if_contains("schema");
  }
}

Result<std::uint32_t, InvalidRequest> read_choice_count(const json::object& root) {
  const auto* v = root.if_contains("n");
  if (!v || v->is_null()) return 1u;
  const bool in_range = (v->is_int64() && v->get_int64() >= 1 && v->get_int64() <= 128) ||
                        (v->is_uint64() && v->get_uint64() <= 128);
  if (!in_range) return invalid("Invalid 'n': expected an integer between 1 and 128.", "n");
  return static_cast<std::uint32_t>(v->to_number<std::uint64_t>());
}

}  // namespace

Result<json::value, InvalidRequest> parse_json_body(std::string_view body) {
  boost::system::error_code ec;
  json::value root = json::parse(body, ec);
  // Boost.JSON reports a lone high surrogate followed by plain text as a generic syntax
  // error, so any failure gets one retry when the repair changed something.
  if (ec) {
    std::string repaired(body);
    if (replace_lone_surrogate_escapes(repaired)) {
      ec.clear();
      root = json::parse(repaired, ec);
    }
  }
  if (ec) return invalid("We could not parse the JSON body of your request (" + ec.message() + ").");
  return root;
}

Result<ChatCall, InvalidRequest> read_chat_call(const json::value& root_value, std::string_view default_model) {
  const auto* root = root_value.if_object();
  if (!root) return invalid("The request body must be a JSON object.");
  ChatCall call;

  const auto* model = root->if_contains("model");
  if (model && model->is_string()) {
    call.model = view_of(model->get_string());
  } else if ((!model || model->is_null()) && !default_model.empty()) {
    call.model = default_model;
  } else {
    return invalid("You must provide a model parameter.", "model");
  }

  if (auto messages_ok = check_messages(*root); !messages_ok) return messages_ok.error();
  const auto& messages = root->at("messages").get_array();
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    const auto& message = it->get_object();
    if (string_member(message, "role") == "user") {
      call.last_user_text = content_text(message);
      break;
    }
  }

  if (const auto* stream = root->if_contains("stream"); stream && !stream->is_null()) {
    if (!stream->is_bool()) return invalid("Invalid type for 'stream': expected a boolean.", "stream");
    call.stream = stream->get_bool();
  }
  if (const auto* options = object_member(*root, "stream_options")) {
    const auto* include = options->if_contains("include_usage");
    call.include_usage = include && include->is_bool() && include->get_bool();
  }

  auto n = read_choice_count(*root);
  if (!n) return n.error();
  call.n = *n;
  auto max_tokens = read_max_tokens(*root);
  if (!max_tokens) return max_tokens.error();
  call.max_output_tokens = *max_tokens;
  call.tool = read_tool_target(*root);
  read_response_format(*root, call);
  return call;
}

namespace {

// Views over the request for the tokenizer's chat count. Vectors are sized up front so
// the spans handed out stay valid while they fill.
class PromptViews {
 public:
  explicit PromptViews(const json::object& root) {
    reserve(root);
    if (const auto* messages = array_member(root, "messages")) {
      for (const auto& m : *messages)
        if (const auto* message = m.if_object()) add_message(*message);
    }
    if (const auto* tools = array_member(root, "tools")) {
      for (const auto& t : *tools) {
        const auto* tool = t.if_object();
        const auto* function = tool ? object_member(*tool, "function") : nullptr;
        if (function) add_tool(*function);
      }
    }
  }

  tk::ChatPromptView view() const { return {messages_, tools_}; }

 private:
  static const json::object* schema_properties(const json::object& function) {
    const auto* parameters = object_member(function, "parameters");
    return parameters ? object_member(*parameters, "properties") : nullptr;
  }

  void reserve(const json::object& root) {
    std::size_t messages = 0, parts = 0, calls = 0, tools = 0, properties = 0, enums = 0;
    if (const auto* list = array_member(root, "messages")) {
      for (const auto& m : *list) {
        const auto* message = m.if_object();
        if (!message) continue;
        ++messages;
        if (const auto* content = array_member(*message, "content")) parts += content->size();
        if (const auto* tool_calls = array_member(*message, "tool_calls")) calls += tool_calls->size();
      }
    }
    if (const auto* list = array_member(root, "tools")) {
      for (const auto& t : *list) {
        const auto* tool = t.if_object();
        const auto* function = tool ? object_member(*tool, "function") : nullptr;
        if (!function) continue;
        ++tools;
        const auto* props = schema_properties(*function);
        if (!props) continue;
        properties += props->size();
        for (const auto& prop : *props) {
          const auto* spec = prop.value().if_object();
          const auto* values = spec ? array_member(*spec, "enum") : nullptr;
          if (values) enums += values->size();
        }
      }
    }
    messages_.reserve(messages);
    parts_.reserve(parts);
    tool_calls_.reserve(calls);
    tools_.reserve(tools);
    properties_.reserve(properties);
    enum_values_.reserve(enums);
  }

  void add_message(const json::object& message) {
    tk::MessageView view;
    view.role = string_member(message, "role").value_or("");
    view.name = string_member(message, "name");
    view.tool_call_id = string_member(message, "tool_call_id");
    if (const auto* content = message.if_contains("content")) {
      if (content->is_string()) view.content = view_of(content->get_string());
      if (const auto* parts = content->if_array()) view.parts = add_parts(*parts);
    }
    if (const auto* calls = array_member(message, "tool_calls")) view.tool_calls = add_tool_calls(*calls);
    messages_.push_back(view);
  }

  std::span<const tk::ContentPartView> add_parts(const json::array& parts) {
    const std::size_t first = parts_.size();
    for (const auto& p : parts) {
      const auto* part = p.if_object();
      tk::ContentPartView view;
      view.kind = tk::ContentPartView::Kind::other;
      const auto type = part ? string_member(*part, "type") : std::nullopt;
      if (type == "text") {
        view.kind = tk::ContentPartView::Kind::text;
        view.text = string_member(*part, "text").value_or("");
      } else if (type == "image_url") {
        view.kind = tk::ContentPartView::Kind::image;
        if (const auto* image = object_member(*part, "image_url")) {
          view.image_url = string_member(*image, "url").value_or("");
          const auto detail = string_member(*image, "detail");
          if (detail == "low") view.detail = tk::ImageDetail::low;
          if (detail == "high") view.detail = tk::ImageDetail::high;
        }
      }
      parts_.push_back(view);
    }
    return {parts_.data() + first, parts_.size() - first};
  }

  std::span<const tk::ToolCallView> add_tool_calls(const json::array& calls) {
    const std::size_t first = tool_calls_.size();
    for (const auto& c : calls) {
      const auto* call = c.if_object();
      if (!call) continue;
      tk::ToolCallView view;
      view.id = string_member(*call, "id").value_or("");
      view.type = string_member(*call, "type").value_or("");
      if (const auto* function = object_member(*call, "function")) {
        view.function_name = string_member(*function, "name").value_or("");
        view.arguments = string_member(*function, "arguments").value_or("");
      }
      tool_calls_.push_back(view);
    }
    return {tool_calls_.data() + first, tool_calls_.size() - first};
  }

  void add_tool(const json::object& function) {
    tk::ToolView view;
    view.name = string_member(function, "name").value_or("");
    view.description = string_member(function, "description").value_or("");
    if (const auto* props = schema_properties(function)) {
      const std::size_t first = properties_.size();
      for (const auto& prop : *props) add_property(prop.key(), prop.value());
      view.properties = {properties_.data() + first, properties_.size() - first};
    }
    tools_.push_back(view);
  }

  void add_property(std::string_view name, const json::value& spec_value) {
    tk::ToolPropertyView view;
    view.name = name;
    if (const auto* spec = spec_value.if_object()) {
      view.description = string_member(*spec, "description").value_or("");
      if (const auto* type = spec->if_contains("type")) {
        // A union type (["string", "null"]) counts by its first member.
        if (type->is_string()) view.type = view_of(type->get_string());
        if (const auto* types = type->if_array(); types && !types->empty() && types->front().is_string())
          view.type = view_of(types->front().get_string());
      }
      if (const auto* values = array_member(*spec, "enum")) {
        const std::size_t first = enum_values_.size();
        for (const auto& v : *values)
          if (v.is_string()) enum_values_.push_back(view_of(v.get_string()));
        view.enum_values = {enum_values_.data() + first, enum_values_.size() - first};
      }
    }
    properties_.push_back(view);
  }

  std::vector<tk::MessageView> messages_;
  std::vector<tk::ContentPartView> parts_;
  std::vector<tk::ToolCallView> tool_calls_;
  std::vector<tk::ToolView> tools_;
  std::vector<tk::ToolPropertyView> properties_;
  std::vector<std::string_view> enum_values_;
};

}  // namespace

std::uint64_t count_prompt_tokens(const json::value& root, std::string_view model) {
  const auto* object = root.if_object();
  if (!object) return 0;
  const PromptViews views(*object);
  const auto& encoding = tk::Encoding::get(tk::encoding_for_model(model, tk::EncodingId::cl100k_base));
  return tk::count_chat_prompt(encoding, views.view(), tk::chat_count_options_for_model(model));
}

}  // namespace turnout::mock
