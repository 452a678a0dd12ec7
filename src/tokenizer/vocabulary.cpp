#include "tokenizer/vocabulary.hpp"

#include <algorithm>
#include <bit>
#include <charconv>

namespace turnout::tokenizer {
namespace {

constexpr std::array<std::int8_t, 256> make_base64_values() {
  std::array<std::int8_t, 256> values{};
  values.fill(-1);
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int i = 0; i < 64; ++i) values[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
  return values;
}
constexpr std::array<std::int8_t, 256> kBase64Values = make_base64_values();

// Appends the decoded bytes of standard, padded base64 `text` to `out`.
bool append_base64_decoded(std::string_view text, std::string& out) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  std::uint32_t bits = 0;
  int bit_count = 0;
  for (const char c : text) {
    const int value = kBase64Values[static_cast<unsigned char>(c)];
    if (value < 0) return false;
    bits = (bits << 6) | static_cast<std::uint32_t>(value);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      out.push_back(static_cast<char>((bits >> bit_count) & 0xff));
    }
  }
  return true;
}

}  // namespace

Result<Vocabulary> Vocabulary::from_tiktoken(std::string_view text) {
  Vocabulary vocab;
  vocab.token_bytes_.reserve(text.size() * 3 / 4);
  vocab.offsets_.reserve(text.size() / 8);
  vocab.offsets_.push_back(0);
  std::size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const std::size_t newline = text.find('\n');
    const std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    if (line.empty()) continue;
    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos) {
      return make_error("vocabulary line " + std::to_string(line_number) + ": expected '<base64> <rank>'");
    }
    std::uint32_t rank = 0;
    const std::string_view rank_text = line.substr(space + 1);
    const auto [end, ec] = std::from_chars(rank_text.data(), rank_text.data() + rank_text.size(), rank);
    if (ec != std::errc() || end != rank_text.data() + rank_text.size()) {
      return make_error("vocabulary line " + std::to_string(line_number) + ": bad rank");
    }
    // Ranks are dense and in order in OpenAI's files; decode() relies on that.
    if (rank != vocab.offsets_.size() - 1) {
      return make_error("vocabulary line " + std::to_string(line_number) + ": ranks must be 0, 1, 2, ... in order");
    }
    if (rank >= kMaxTokens) {
      return make_error("vocabulary line " + std::to_string(line_number) + ": more than " +
                        std::to_string(kMaxTokens) + " tokens");
    }
    const std::size_t token_start = vocab.token_bytes_.size();
    if (!append_base64_decoded(line.substr(0, space), vocab.token_bytes_)) {
      return make_error("vocabulary line " + std::to_string(line_number) + ": bad base64");
    }
    if (vocab.token_bytes_.size() == token_start) {
      return make_error("vocabulary line " + std::to_string(line_number) + ": empty token");
    }
    vocab.offsets_.push_back(static_cast<std::uint32_t>(vocab.token_bytes_.size()));
  }
  vocab.token_bytes_.shrink_to_fit();
  vocab.build_index();
  for (unsigned byte = 0; byte < 256; ++byte) {
    const char c = static_cast<char>(byte);
    vocab.byte_rank_[byte] = vocab.rank_of(&c, 1);
    if (vocab.byte_rank_[byte] == kNoToken) {
      return make_error("vocabulary has no token for byte " + std::to_string(byte));
    }
  }
  vocab.byte_pair_rank_.assign(65536, kNoToken);
  for (TokenId rank = 0; rank < vocab.size(); ++rank) {
    const std::string_view bytes = vocab.bytes_of(rank);
    for (std::size_t i = 0; i + 1 < bytes.size(); ++i) {
      const std::size_t pair = (std::size_t{static_cast<unsigned char>(bytes[i])} << 8) | static_cast<unsigned char>(bytes[i + 1]);
      vocab.inner_byte_pairs_[pair / 64] |= std::uint64_t{1} << (pair % 64);
    }
    if (bytes.size() == 2) {
      const auto first = static_cast<unsigned char>(bytes[0]);
      const auto second = static_cast<unsigned char>(bytes[1]);
      vocab.byte_pair_rank_[(std::size_t{first} << 8) | second] = rank;
    }
  }
  return vocab;
}

void Vocabulary::build_index() {
  // 80% of the slots in use: 13% of tokens then sit past their first bucket (6.5% at
  // 65%), but the table is a fifth smaller (o200k_base 3.9 -> 3.2 MB), and the lines of
  // the tokens a text uses stay in cache better: measured pass against pass
  // (scripts/tokenizer-ab.sh), cold multilingual 1-3% faster, nothing slower.
  constexpr double kLoadFactor = 0.8;
  bucket_count_ = static_cast<std::size_t>(static_cast<double>(size()) / (Bucket::kSlots * kLoadFactor)) + 1;
  buckets_.assign(bucket_count_, Bucket{});
  second_heads_.assign(bucket_count_ * Bucket::kSlots, 0);
  // 8 to 16 filter bits per token (a power of two words, at least two): about 2% of
  // non-tokens get past it. (32 bits per token and one probe let fewer through, but the
  // filter no longer stayed in L2, which cost more.)
  constexpr std::size_t kFilterBitsPerToken = 8;
  const std::size_t filter_words = std::bit_ceil(std::max<std::size_t>(2, size() * kFilterBitsPerToken / 64));
  filter_shift_ = 64 - static_cast<unsigned>(std::countr_zero(filter_words));
  presence_filter_.assign(filter_words, 0);
  std::vector<std::uint64_t> hashes(size());
  for (TokenId rank = 0; rank < size(); ++rank) {
    const std::string_view bytes = bytes_of(rank);
    hashes[rank] = hash_token_bytes(bytes.data(), bytes.size());
  }
  // Inserting is bound by cache misses on the table; fetching buckets a few insertions
  // ahead overlaps them (this is most of the start-up cost).
  constexpr TokenId kPrefetchDistance = 16;
  for (TokenId rank = 0; rank < size(); ++rank) {
    if (rank + kPrefetchDistance < size()) {
      const std::uint64_t ahead = hashes[rank + kPrefetchDistance];
      __builtin_prefetch(&buckets_[bucket_of(ahead)], 1);
      __builtin_prefetch(&second_heads_[bucket_of(ahead) * Bucket::kSlots], 1);
      __builtin_prefetch(&presence_filter_[filter_word_of(ahead)], 1);
    }
    const std::uint64_t hash = hashes[rank];
    presence_filter_[filter_word_of(hash)] |= filter_mask_of(hash);
    const std::string_view bytes = bytes_of(rank);
    // The first free slot in probe order, where rank_of() will look.
    for (std::size_t bucket = bucket_of(hash);; bucket = bucket + 1 == bucket_count_ ? 0 : bucket + 1) {
      Bucket& candidates = buckets_[bucket];
      const auto* free_slot = std::find(candidates.entries.begin(), candidates.entries.end(), Bucket::kFree);
      if (free_slot == candidates.entries.end()) continue;
      const auto slot = static_cast<std::size_t>(free_slot - candidates.entries.begin());
      candidates.heads[slot] = head_of(bytes.data(), bytes.size());
      candidates.entries[slot] = (rank << 8) | length_code_of(bytes.size());
      second_heads_[bucket * Bucket::kSlots + slot] = second_head_of(bytes.data(), bytes.size());
      break;
    }
  }
}

std::size_t Vocabulary::memory_bytes() const {
  return token_bytes_.capacity() + offsets_.capacity() * sizeof(std::uint32_t) +
         buckets_.capacity() * sizeof(Bucket) + second_heads_.capacity() * sizeof(std::uint64_t) +
         byte_pair_rank_.capacity() * sizeof(TokenId) + presence_filter_.capacity() * sizeof(std::uint64_t);
}

}  // namespace turnout::tokenizer
