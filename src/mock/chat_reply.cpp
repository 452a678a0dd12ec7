#include "mock/chat_reply.hpp"

#include "tokenizer/tokenizer.hpp"

#include <boost/beast/http/status.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace turnout::mock {
namespace json = boost::json;
namespace tk = turnout::tokenizer;

namespace {

constexpr std::size_t quoted_characters = 40;
constexpr std::string_view system_fingerprint = "fp_mock";

bool is_continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// The first `count` code points of UTF-8 `text`.
std::string_view first_characters(std::string_view text, std::size_t count) {
  std::size_t end = 0;
  for (std::size_t seen = 0; end < text.size(); ++end) {
    if (is_continuation_byte(text[end])) continue;
    if (seen++ == count) break;
  }
  return text.substr(0, end);
}

// Drops a UTF-8 sequence cut short at the end of `text` (token boundaries can split one).
void trim_incomplete_utf8(std::string& text) {
  std::size_t start = text.size();
  std::size_t continuation = 0;
  while (start > 0 && continuation < 4 && is_continuation_byte(text[start - 1])) {
    --start;
    ++continuation;
  }
  if (start == 0) return;
  const auto lead = static_cast<unsigned char>(text[start - 1]);
  const std::size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  if (continuation + 1 < length) text.resize(start - 1);
}

std::size_t count_words(std::string_view text) {
  std::size_t words = 0;
  for (std::size_t i = 0; i < text.size(); ++i)
    if (text[i] != ' ' && (i == 0 || text[i - 1] == ' ')) ++words;
  return words;
}

json::object arguments_object(const json::value* schema);

json::value placeholder_for(const json::value& property) {
  const auto* spec = property.if_object();
  if (!spec) return "mock";
  if (const auto* values = spec->if_contains("enum"); values && values->is_array() && !values->get_array().empty())
    return values->get_array().front();
  const auto* type_value = spec->if_contains("type");
  std::string_view type;
  if (type_value && type_value->is_string()) type = type_value->get_string();
  if (type == "integer") return 1;
  if (type == "number") return 1.5;
  if (type == "boolean") return true;
  if (type == "array") return json::array();
  if (type == "null") return nullptr;
  if (type == "object") return arguments_object(&property);
  return "mock";
}

// Cuts `content` to its first `max_tokens` tokens; returns whether it was cut.
bool cut_to_tokens(std::string& content, std::uint64_t max_tokens, const tk::Encoding& encoding) {
  std::vector<tk::TokenId> ids;
  encoding.encode(content, ids);
  if (ids.size() <= max_tokens) return false;
  ids.resize(max_tokens);
  content = encoding.decode(ids);
  trim_incomplete_utf8(content);
  return true;
}

GeneratedChoice generate_choice(const ChatCall& call, const ReplySettings& reply, std::uint32_t index,
                                AnswerStamp stamp, const tk::Encoding& encoding) {
  GeneratedChoice choice;
  if (call.tool) {
    choice.tool_call = GeneratedToolCall{fmt::format("call_mock_{}_{}", stamp.sequence, index),
                                         std::string(call.tool->name),
                                         arguments_for_schema(call.tool->parameters)};
    choice.finish_reason = "tool_calls";
    return choice;
  }
  const std::string text = answer_text(call, index, reply.completion_words);
  if (call.answer_schema) {
    choice.content = arguments_for_schema(call.answer_schema);
  } else if (call.json_answer) {
    choice.content = json::serialize(json::object{{"answer", text}});
  } else {
    choice.content = text;
  }
  const bool cut = call.max_output_tokens && cut_to_tokens(choice.content, *call.max_output_tokens, encoding);
  choice.finish_reason = cut ? "length" : "stop";
  return choice;
}

json::object arguments_object(const json::value* schema) {
  json::object arguments;
  const auto* spec = schema ? schema->if_object() : nullptr;
  const auto* properties_value = spec ? spec->if_contains("properties") : nullptr;
  if (const auto* properties = properties_value ? properties_value->if_object() : nullptr) {
    for (const auto& property : *properties) arguments[property.key()] = placeholder_for(property.value());
  }
  return arguments;
}

json::object usage_json(const Usage& usage) {
  return json::object{
      {"prompt_tokens", usage.prompt_tokens},
      {"completion_tokens", usage.completion_tokens},
      {"total_tokens", usage.prompt_tokens + usage.completion_tokens},
      {"prompt_tokens_details", json::object{{"cached_tokens", usage.cached_tokens}, {"audio_tokens", 0}}},
      {"completion_tokens_details", json::object{{"reasoning_tokens", 0},
                                                 {"audio_tokens", 0},
                                                 {"accepted_prediction_tokens", 0},
                                                 {"rejected_prediction_tokens", 0}}},
  };
}

json::object message_json(const GeneratedChoice& choice) {
  json::object message{{"role", "assistant"}};
  if (choice.tool_call) {
    message["content"] = nullptr;
    message["refusal"] = nullptr;
    const auto& call = *choice.tool_call;
    message["tool_calls"] = json::array{json::object{
        {"id", call.id},
        {"type", "function"},
        {"function", json::object{{"name", call.name}, {"arguments", call.arguments}}},
    }};
  } else {
    message["content"] = choice.content;
    message["refusal"] = nullptr;
  }
  message["annotations"] = json::array();
  return message;
}

// Builds "data: {chunk}\n\n" events sharing one serialised envelope
// (id, object, created, model...), so each event serialises only its own choice.
class ChunkWriter {
 public:
  ChunkWriter(const GeneratedCompletion& completion, bool usage_field) {
    json::object envelope{
        {"id", completion.id},
        {"object", "chat.completion.chunk"},
        {"created", completion.created},
        {"model", completion.model},
        {"service_tier", "default"},
        {"system_fingerprint", system_fingerprint},
    };
    prefix_ = "data: " + json::serialize(envelope);
    prefix_.pop_back();  // reopen the object
    prefix_ += ",\"choices\":[";
    suffix_ = usage_field ? "],\"usage\":null}\n\n" : "]}\n\n";
  }

  std::string choice_event(std::uint32_t index, json::object delta, std::string_view finish_reason = {}) const {
    json::object choice{{"index", index}, {"delta", std::move(delta)}, {"logprobs", nullptr}};
    choice["finish_reason"] = finish_reason.empty() ? json::value(nullptr) : json::value(finish_reason);
    return prefix_ + json::serialize(choice) + suffix_;
  }

  std::string usage_event(const Usage& usage) const {
    return prefix_ + "],\"usage\":" + json::serialize(usage_json(usage)) + "}\n\n";
  }

  // A chunk cut off inside its JSON, as a broken proxy or provider might send.
  std::string malformed_event() const { return prefix_ + "{\"index\":0,\"delta\":{\"content\":\"\n\n"; }

 private:
  std::string prefix_;
  std::string suffix_;
};

json::object role_delta(const GeneratedChoice& choice) {
  if (!choice.tool_call) return json::object{{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}};
  const auto& call = *choice.tool_call;
  return json::object{
      {"role", "assistant"},
      {"content", nullptr},
      {"tool_calls", json::array{json::object{
                         {"index", 0},
                         {"id", call.id},
                         {"type", "function"},
                         {"function", json::object{{"name", call.name}, {"arguments", ""}}},
                     }}},
      {"refusal", nullptr},
  };
}

json::object fragment_delta(const GeneratedChoice& choice, std::string_view fragment) {
  if (!choice.tool_call) return json::object{{"content", fragment}};
  return json::object{{"tool_calls", json::array{json::object{
                                         {"index", 0},
                                         {"function", json::object{{"arguments", fragment}}},
                                     }}}};
}

}  // namespace

std::string answer_text(const ChatCall& call, std::uint32_t index, std::uint32_t completion_words) {
  static constexpr std::array<std::string_view, 8> filler{"the", "quick", "brown", "fox",
                                                           "jumps", "over", "lazy", "dog"};
  std::string text = index == 0 ? std::string("Mock answer to: ") : fmt::format("Mock answer {} to: ", index + 1);
  text += first_characters(call.last_user_text, quoted_characters);
  for (std::size_t words = count_words(text), i = 0; words < completion_words; ++words, ++i) {
    text += ' ';
    text += filler[i % filler.size()];
  }
  return text;
}

std::string arguments_for_schema(const json::value* schema) { return json::serialize(arguments_object(schema)); }

GeneratedCompletion generate_completion(const ChatCall& call, const ReplySettings& reply, AnswerStamp stamp,
                                        std::uint64_t prompt_tokens) {
  const auto& encoding = tk::Encoding::get(tk::encoding_for_model(call.model, tk::EncodingId::cl100k_base));
  GeneratedCompletion completion;
  completion.id = fmt::format("chatcmpl-mock-{}", stamp.sequence);
  completion.created = stamp.created;
  completion.model = std::string(call.model);
  completion.choices.reserve(call.n);
  for (std::uint32_t i = 0; i < call.n; ++i) {
    auto choice = generate_choice(call, reply, i, stamp, encoding);
    completion.usage.completion_tokens +=
        encoding.count(choice.content) + (choice.tool_call ? encoding.count(choice.tool_call->arguments) : 0);
    completion.choices.push_back(std::move(choice));
  }
  completion.usage.prompt_tokens = prompt_tokens;
  completion.usage.cached_tokens = std::min(reply.cached_tokens, prompt_tokens);
  return completion;
}

std::string completion_json(const GeneratedCompletion& completion) {
  json::array choices;
  choices.reserve(completion.choices.size());
  for (std::uint32_t i = 0; i < completion.choices.size(); ++i) {
    const auto& choice = completion.choices[i];
    choices.emplace_back(json::object{
        {"index", i},
        {"message", message_json(choice)},
        {"logprobs", nullptr},
        {"finish_reason", choice.finish_reason},
    });
  }
  return json::serialize(json::object{
      {"id", completion.id},
      {"object", "chat.completion"},
      {"created", completion.created},
      {"model", completion.model},
      {"choices", std::move(choices)},
      {"usage", usage_json(completion.usage)},
      {"service_tier", "default"},
      {"system_fingerprint", system_fingerprint},
  });
}

std::string truncated_completion_json(const GeneratedCompletion& completion) {
  std::string body = completion_json(completion);
  body.resize(body.size() / 2);
  return body;
}

std::vector<std::string_view> split_for_stream(std::string_view text, std::uint32_t parts) {
  // Candidate cut points: before the space that precedes each word (pieces look like
  // tokens, " word"), or at every character start when there are too few words.
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < text.size(); ++i)
    if (text[i] == ' ' && text[i - 1] != ' ') cuts.push_back(i);
  if (cuts.size() + 1 < parts) {
    cuts.clear();
    for (std::size_t i = 1; i < text.size(); ++i)
      if (!is_continuation_byte(text[i])) cuts.push_back(i);
  }
  std::vector<std::string_view> pieces;
  if (text.empty()) return pieces;
  const std::size_t available = cuts.size() + 1;
  const std::size_t count = std::min<std::size_t>(parts, available);
  pieces.reserve(count);
  std::size_t begin = 0;
  for (std::size_t j = 1; j <= count; ++j) {
    const std::size_t end = j == count ? text.size() : cuts[j * available / count - 1];
    pieces.push_back(text.substr(begin, end - begin));
    begin = end;
  }
  return pieces;
}

std::vector<StreamEvent> stream_events(const GeneratedCompletion& completion, const StreamShape& shape) {
  const ChunkWriter writer(completion, shape.include_usage);
  std::vector<std::vector<std::string_view>> fragments;
  std::size_t steps = 0;
  for (const auto& choice : completion.choices) {
    fragments.push_back(split_for_stream(choice.tool_call ? choice.tool_call->arguments : choice.content, shape.chunks));
    steps = std::max(steps, fragments.back().size());
  }

  std::vector<StreamEvent> events;
  const auto n = static_cast<std::uint32_t>(completion.choices.size());
  for (std::uint32_t i = 0; i < n; ++i) events.push_back({writer.choice_event(i, role_delta(completion.choices[i]))});
  for (std::size_t step = 0; step < steps; ++step) {
    bool first_of_step = true;
    for (std::uint32_t i = 0; i < n; ++i) {
      if (step >= fragments[i].size()) continue;
      events.push_back({writer.choice_event(i, fragment_delta(completion.choices[i], fragments[i][step])), first_of_step});
      first_of_step = false;
    }
    if (step == 0 && shape.malformed_event) events.push_back({writer.malformed_event()});
  }
  if (steps == 0 && shape.malformed_event) events.push_back({writer.malformed_event()});
  for (std::uint32_t i = 0; i < n; ++i)
    events.push_back({writer.choice_event(i, json::object(), completion.choices[i].finish_reason)});
  if (shape.include_usage) events.push_back({writer.usage_event(completion.usage)});
  events.push_back({"data: [DONE]\n\n"});
  return events;
}

std::string error_json(std::string_view message, std::string_view type, std::string_view param, std::string_view code) {
  const auto or_null = [](std::string_view s) { return s.empty() ? json::value(nullptr) : json::value(s); };
  return json::serialize(json::object{{"error", json::object{
                                                    {"message", message},
                                                    {"type", type},
                                                    {"param", or_null(param)},
                                                    {"code", or_null(code)},
                                                }}});
}

std::string simulated_error_json(unsigned status) {
  switch (status) {
    case 400: return error_json("Simulated bad request (turnout mock-upstream).", "invalid_request_error");
    case 401:
      return error_json("Incorrect API key provided (simulated by turnout mock-upstream).", "invalid_request_error",
                        {}, "invalid_api_key");
    case 404:
      return error_json("The model does not exist or you do not have access to it (simulated).",
                        "invalid_request_error", "model", "model_not_found");
    case 429:
      return error_json("Rate limit reached (simulated by turnout mock-upstream). Please try again later.",
                        "requests", {}, "rate_limit_exceeded");
    case 503:
      return error_json("The engine is currently overloaded, please try again later (simulated).", "server_error");
    default: break;
  }
  if (status < 500) return error_json(fmt::format("Simulated client error {}.", status), "invalid_request_error");
  return error_json("The server had an error while processing your request (simulated by turnout mock-upstream).",
                    "server_error");
}

std::string html_error_page(unsigned status) {
  const auto reason = boost::beast::http::obsolete_reason(boost::beast::http::int_to_status(status));
  return fmt::format(
      "<html>\r\n<head><title>{0} {1}</title></head>\r\n<body>\r\n<center><h1>{0} {1}</h1></center>\r\n"
      "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
      status, std::string_view(reason.data(), reason.size()));
}

}  // namespace turnout::mock
