#include "tokenizer/tokenizer.hpp"

#include "tokenizer/bpe.hpp"
#include "tokenizer/character_table.hpp"
#include "tokenizer/digit_groups.hpp"
#include "tokenizer/embedded_vocabularies.hpp"
#include "tokenizer/emoji_table.hpp"
#include "tokenizer/piece_cache.hpp"
#include "tokenizer/pretokenizer.hpp"
#include "tokenizer/utf8.hpp"
#include "tokenizer/vocabulary.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>

namespace turnout::tokenizer {
namespace {

struct SpecialToken {
  TokenId id;
  std::string_view text;
};

// Special tokens are never produced by encode() (their text is ordinary text), but their
// ids decode to their text, as in tiktoken.
constexpr SpecialToken kCl100kSpecialTokens[] = {
    {100257, "<|endoftext|>"}, {100258, "<|fim_prefix|>"}, {100259, "<|fim_middle|>"},
    {100260, "<|fim_suffix|>"}, {100276, "<|endofprompt|>"},
};
constexpr SpecialToken kO200kSpecialTokens[] = {
    {199999, "<|endoftext|>"},
    {200018, "<|endofprompt|>"},
};

// At most this much long-piece buffer memory stays with a thread between calls: enough
// for pieces of about a megabyte. A longer piece's buffers are given back after its call.
constexpr std::size_t kMaxRetainedScratchBytes = std::size_t{32} << 20;

// What a thread keeps between tokenizer calls: the long-piece buffers (see MergeScratch),
// reused instead of taken fresh from the kernel each time, and a cache of pieces per
// encoding (see PieceCache). Per thread, so Encoding stays immutable and calls on
// different threads share nothing.
struct ThreadState {
  MergeScratch scratch;
  std::array<PieceCache, 2> piece_caches;  // by EncodingId
  std::vector<TokenId> piece_tokens;        // the tokens of the piece being merged

  static ThreadState& of_this_thread() {
    thread_local ThreadState state;
    return state;
  }
};

// The calling thread's state for one call; trims the merge buffers when the call ends.
class ThreadStateLease {
 public:
  ThreadStateLease() : state_(ThreadState::of_this_thread()) {}
  ThreadStateLease(const ThreadStateLease&) = delete;
  ThreadStateLease& operator=(const ThreadStateLease&) = delete;
  ~ThreadStateLease() { state_.scratch.trim_to(kMaxRetainedScratchBytes); }
  ThreadState* operator->() { return &state_; }

 private:
  ThreadState& state_;
};

template <class Scanner>
class BpeEncoding final : public Encoding {
 public:
  BpeEncoding(EncodingId id, Vocabulary vocab, std::span<const SpecialToken> special_tokens)
      : id_(id), vocab_(std::move(vocab)), characters_(vocab_), digit_groups_(vocab_),
        merger_(vocab_, &characters_), emoji_pieces_(vocab_, merger_), special_tokens_(special_tokens) {}
  BpeEncoding(const BpeEncoding&) = delete;
  BpeEncoding& operator=(const BpeEncoding&) = delete;

  EncodingId id() const override { return id_; }

  std::size_t count(std::string_view text) const override {
    std::size_t tokens = 0;
    tokenize(text, [&tokens](TokenId) { ++tokens; });
    return tokens;
  }

  void encode(std::string_view text, std::vector<TokenId>& out) const override {
    out.reserve(out.size() + text.size() / 4);
    tokenize(text, [&out](TokenId token) { out.push_back(token); });
  }

  std::string decode(std::span<const TokenId> ids) const override {
    std::string bytes;
    for (const TokenId id : ids) {
      if (id < vocab_.size()) {
        bytes.append(vocab_.bytes_of(id));
        continue;
      }
      for (const SpecialToken& special : special_tokens_) {
        if (special.id == id) bytes.append(special.text);
      }
    }
    return bytes;
  }

 private:
  template <class Sink>
  void tokenize(std::string_view text, Sink&& sink) const {
    if (is_valid_utf8(text)) {
      tokenize_valid(text, sink);
    } else {
      tokenize_valid(replace_invalid_utf8(text), sink);
    }
  }

  template <class Sink>
  void tokenize_valid(std::string_view text, Sink& sink) const {
    ThreadStateLease state;
    MergeScratch& scratch = state->scratch;
    PieceCache& cache = state->piece_caches[static_cast<std::size_t>(id_)];
    std::vector<TokenId>& piece_tokens = state->piece_tokens;
    const auto* end = reinterpret_cast<BytePtr>(text.data()) + text.size();
    for (auto p = reinterpret_cast<BytePtr>(text.data()); p < end;) {
      const BytePtr piece_end = Scanner::piece_end(p, end);
      const char* piece = reinterpret_cast<const char*>(p);
      auto length = static_cast<std::uint32_t>(piece_end - p);
      p = piece_end;
      if (length == 1) {  // a table lookup already
        merger_.merge_piece(piece, length, sink, scratch);
        continue;
      }
      // A two-byte piece that is a token (" a", "of", " \n", "42") from the byte-pair
      // table: one read, instead of a hash, the piece cache's tag and entry, and the
      // vocabulary's filter.
      if (length == 2) {
        if (const TokenId pair = vocab_.rank_of_byte_pair(piece_end[-2], piece_end[-1]); pair != kNoToken) {
          sink(pair);
          continue;
        }
      }
      if (const TokenId digits = digit_groups_.token_of(piece, length); digits != kNoToken) {
        sink(digits);
        continue;
      }
      // Emoji (after a space or not) from a table, without a hash, one after another
      // while no token holds the bytes on either side of where one ends; the rest of the
      // piece, if any, merges on its own.
      if (EmojiPieceTable::may_lead(piece)) [[unlikely]] {
        EmojiPieceTable::Lead emoji = emoji_pieces_.lead_of(piece, length);
        for (; !emoji.tokens.empty(); emoji = emoji_pieces_.lead_of(piece, length)) {
          for (const TokenId token : emoji.tokens) sink(token);
          piece += emoji.length;
          length -= static_cast<std::uint32_t>(emoji.length);
          if (length < 2) break;
        }
        if (length == 0) continue;
      }
      const std::uint64_t hash = hash_token_bytes(piece, length);
      if (const std::span<const TokenId> cached = cache.find(piece, length, hash); !cached.empty()) {
        for (const TokenId token : cached) sink(token);
        continue;
      }
      if (!PieceCache::may_keep(length)) {
        merger_.merge_piece(piece, length, hash, sink, scratch);
        continue;
      }
      piece_tokens.clear();
      merger_.merge_piece(
          piece, length, hash,
          [&](TokenId token) {
            piece_tokens.push_back(token);
            sink(token);
          },
          scratch);
      cache.store(piece, length, hash, piece_tokens);
    }
  }

  EncodingId id_;
  Vocabulary vocab_;
  CharacterTable characters_;
  DigitGroupTable digit_groups_;
  BytePairMerger merger_;
  EmojiPieceTable emoji_pieces_;  // built with merger_
  std::span<const SpecialToken> special_tokens_;
};

template <class Scanner>
const Encoding* build_encoding(EncodingId id, std::string_view tiktoken_text,
                               std::span<const SpecialToken> special_tokens) {
  Result<Vocabulary> vocab = Vocabulary::from_tiktoken(tiktoken_text);
  if (!vocab) {
    // The vocabulary is part of the binary; failing to read it is a build defect.
    std::fprintf(stderr, "turnout: embedded %s vocabulary is corrupt: %s\n", encoding_name(id).data(),
                 vocab.error().message.c_str());
    std::abort();
  }
  // Never destroyed: threads still running at exit may be using it.
  return new BpeEncoding<Scanner>(id, std::move(*vocab), special_tokens);
}

}  // namespace

std::optional<EncodingId> parse_encoding_name(std::string_view name) {
  if (name == "cl100k_base") return EncodingId::cl100k_base;
  if (name == "o200k_base") return EncodingId::o200k_base;
  return std::nullopt;
}

std::string_view encoding_name(EncodingId id) {
  switch (id) {
    case EncodingId::cl100k_base: return "cl100k_base";
    case EncodingId::o200k_base: return "o200k_base";
  }
  return "unknown";
}

void Encoding::clear_thread_caches() {
  for (PieceCache& cache : ThreadState::of_this_thread().piece_caches) cache.forget_all();
}

void Encoding::preload_all() {
  std::thread o200k([] { get(EncodingId::o200k_base); });
  get(EncodingId::cl100k_base);
  o200k.join();
}

const Encoding& Encoding::get(EncodingId id) {
  // Function-local statics: built on first use, exactly once, thread-safely.
  switch (id) {
    case EncodingId::o200k_base: {
      static const Encoding* const o200k =
          build_encoding<O200kScanner>(id, embedded_o200k_base_tiktoken(), kO200kSpecialTokens);
      return *o200k;
    }
    case EncodingId::cl100k_base:
      break;
  }
  static const Encoding* const cl100k =
      build_encoding<Cl100kScanner>(EncodingId::cl100k_base, embedded_cl100k_base_tiktoken(), kCl100kSpecialTokens);
  return *cl100k;
}

}  // namespace turnout::tokenizer
