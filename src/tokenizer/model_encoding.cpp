// Which encoding a model uses, following tiktoken's model.py (MODEL_TO_ENCODING and
// MODEL_PREFIX_TO_ENCODING), widened to whole model families so that new snapshots and
// point releases (gpt-5.1, o3-pro, ...) resolve without a code change.
#include "tokenizer/tokenizer.hpp"

namespace turnout::tokenizer {
namespace {

struct ModelFamily {
  std::string_view prefix;
  EncodingId encoding;
};

// First match wins, so more specific prefixes come before the ones they extend
// ("gpt-4o" before "gpt-4", "ft:gpt-4o" before "ft:gpt-4").
constexpr ModelFamily kModelFamilies[] = {
    {"gpt-4o", EncodingId::o200k_base},
    {"gpt-4.1", EncodingId::o200k_base},
    {"gpt-4.5", EncodingId::o200k_base},
    {"gpt-5", EncodingId::o200k_base},
    {"chatgpt-4o", EncodingId::o200k_base},
    {"o1", EncodingId::o200k_base},
    {"o3", EncodingId::o200k_base},
    {"o4", EncodingId::o200k_base},
    {"ft:gpt-4o", EncodingId::o200k_base},
    {"gpt-4", EncodingId::cl100k_base},
    {"gpt-3.5", EncodingId::cl100k_base},
    {"gpt-35-turbo", EncodingId::cl100k_base},  // Azure deployment names
    {"text-embedding-3", EncodingId::cl100k_base},
    {"text-embedding-ada-002", EncodingId::cl100k_base},
    {"davinci-002", EncodingId::cl100k_base},
    {"babbage-002", EncodingId::cl100k_base},
    {"ft:gpt-4", EncodingId::cl100k_base},
    {"ft:gpt-3.5-turbo", EncodingId::cl100k_base},
    {"ft:davinci-002", EncodingId::cl100k_base},
    {"ft:babbage-002", EncodingId::cl100k_base},
};

}  // namespace

EncodingId encoding_for_model(std::string_view model, EncodingId fallback) {
  for (const ModelFamily& family : kModelFamilies) {
    if (model.starts_with(family.prefix)) return family.encoding;
  }
  return fallback;
}

}  // namespace turnout::tokenizer
