#pragma once
// POST /v1/responses on the mock upstream. The request is translated to its chat
// equivalent (instructions -> system message; input items -> messages, function calls ->
// assistant tool calls, their outputs -> tool messages; function tools -> chat tools), so
// the same answer generator and the same real-tokenizer count serve it; the answer is
// rendered as a Responses `response` object, or as its typed SSE events.
#include "common/result.hpp"
#include "mock/chat_call.hpp"
#include "mock/chat_reply.hpp"

#include <boost/json/fwd.hpp>

#include <string>
#include <vector>

namespace turnout::mock {

// The chat-completions body equivalent to a Responses body (the caller keeps it alive:
// a ChatCall read from it points into it). A 400 for what OpenAI would refuse.
Result<boost::json::value, InvalidRequest> chat_equivalent(const boost::json::value& responses_body);

// The `response` object: output (a message with one output_text part, or function calls)
// and usage {input_tokens, input_tokens_details.cached_tokens, output_tokens,
// output_tokens_details.reasoning_tokens, total_tokens}.
std::string response_json(const GeneratedCompletion& completion);

// The stream: response.created, response.in_progress, response.output_item.added,
// response.content_part.added, `chunks` response.output_text.delta (or
// response.function_call_arguments.delta), the matching .done events and
// response.completed carrying the response with its usage. Each event is
// "event: <type>\ndata: <json>\n\n" with a sequence_number. With `malformed_event`, an
// invalid JSON event follows the first delta.
std::vector<StreamEvent> response_stream_events(const GeneratedCompletion& completion, std::uint32_t chunks,
                                                bool malformed_event);

}  // namespace turnout::mock
