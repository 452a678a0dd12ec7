#pragma once
// Public interface of the tokenizer module: exact tiktoken-compatible BPE for
// cl100k_base and o200k_base. Self-contained: usable without the server.
//
// Encodings are immutable after construction and safe to share between threads. Each
// thread keeps bounded buffers and a cache of the pieces it has tokenized (a few MB at
// most) between calls; they never change a result.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::tokenizer {

enum class EncodingId { cl100k_base, o200k_base };

std::optional<EncodingId> parse_encoding_name(std::string_view name);
std::string_view encoding_name(EncodingId id);

// The encoding OpenAI uses for a model name, as tiktoken's encoding_for_model does
// (gpt-4o*, gpt-4.1*, o1*, o3*, o4*, gpt-5* -> o200k_base; gpt-4*, gpt-3.5* -> cl100k_base).
// Unknown names fall back to `fallback`.
EncodingId encoding_for_model(std::string_view model, EncodingId fallback);

using TokenId = std::uint32_t;

class Encoding {
 public:
  virtual ~Encoding() = default;

  // The shared instance for `id`, built on first use from the vocabulary embedded in the
  // binary (thread-safe initialisation; immutable afterwards).
  static const Encoding& get(EncodingId id);

  // Builds every encoding now, each on its own thread, so start-up waits for the largest
  // vocabulary only (a server calls this before accepting requests).
  static void preload_all();

  // Forgets the pieces the calling thread has cached (for every encoding), whatever their
  // number, for a fixed small cost (clearing 32 KB of tags per encoding); the cache's
  // memory (bounded) stays. For benchmarks of cold-cache speed: text the
  // thread has not seen before.
  static void clear_thread_caches();

  virtual EncodingId id() const = 0;

  // Number of tokens `text` encodes to. `text` is raw bytes: invalid UTF-8 is handled
  // exactly like tiktoken does for bytes decoded with errors="replace" (each maximal
  // invalid subpart becomes U+FFFD). Special tokens are never recognised: "<|endoftext|>"
  // is ordinary text.
  virtual std::size_t count(std::string_view text) const = 0;

  // Appends the token ids of `text` to `out` (same input rules as count()).
  virtual void encode(std::string_view text, std::vector<TokenId>& out) const = 0;

  // The bytes of the given tokens, concatenated. Unknown ids are skipped.
  virtual std::string decode(std::span<const TokenId> ids) const = 0;
};

}  // namespace turnout::tokenizer
