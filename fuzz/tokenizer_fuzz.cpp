// Fuzz target for the tokenizer: on arbitrary bytes (see make_input), for both encodings,
//   - no crash, no sanitizer report;
//   - count() equals the number of ids encode() gives;
//   - decode(encode(x)) equals x with invalid UTF-8 replaced by U+FFFD;
//   - the ids equal a naive reference merge (tiktoken's algorithm written the obvious,
//     quadratic way, on std::string parts) over the same pre-tokenized pieces.
#include "naive_bpe.hpp"
#include "tokenizer/embedded_vocabularies.hpp"
#include "tokenizer/pretokenizer.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/utf8.hpp"
#include "tokenizer/vocabulary.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace turnout::tokenizer;
using turnout::tokenizer::test::naive_encode;

const Vocabulary& vocabulary(EncodingId id) {
  static const Vocabulary cl100k = Vocabulary::from_tiktoken(embedded_cl100k_base_tiktoken()).value();
  static const Vocabulary o200k = Vocabulary::from_tiktoken(embedded_o200k_base_tiktoken()).value();
  return id == EncodingId::cl100k_base ? cl100k : o200k;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "tokenizer_fuzz: %s\n", what);
    std::abort();
  }
}

}  // namespace

// An odd first byte repeats the rest of the input up to ~400 bytes, and a first byte of 2
// mod 4 reads the rest as (byte, run length) pairs (up to ~600 bytes): long runs and periodic text reach the
// long-piece merges (over BytePairMerger::kShortPieceLimit bytes: merge_long and
// RepetitionMerger) far more often.
std::string make_input(const std::uint8_t* data, std::size_t size) {
  if (size < 2 || (data[0] & 3) == 0) return std::string(reinterpret_cast<const char*>(data), size);
  if ((data[0] & 1) == 0) {
    std::string runs;
    // At most ~500 bytes: the naive merge it is checked against is quadratic.
    for (std::size_t i = 1; i + 1 < size && runs.size() < 500; i += 2) runs.append(1 + data[i + 1] % 128, static_cast<char>(data[i]));
    return runs;
  }
  const std::string unit(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string repeated;
  while (repeated.size() < 400) repeated += unit;
  return repeated;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input = make_input(data, size);
  const std::string replaced = replace_invalid_utf8(input);
  check(is_valid_utf8(replaced), "replacement left invalid UTF-8");
  check(is_valid_utf8(input) == (replaced == input), "validation and replacement disagree");
  for (const EncodingId id : {EncodingId::cl100k_base, EncodingId::o200k_base}) {
    const Encoding& enc = Encoding::get(id);
    std::vector<TokenId> ids;
    enc.encode(input, ids);
    check(enc.count(input) == ids.size(), "count() differs from encode().size()");
    check(enc.decode(ids) == replaced, "decode(encode(x)) differs from x");
    const std::vector<TokenId> expected = id == EncodingId::cl100k_base
                                              ? naive_encode<Cl100kScanner>(vocabulary(id), replaced)
                                              : naive_encode<O200kScanner>(vocabulary(id), replaced);
    check(ids == expected, "ids differ from the naive reference merge");
  }
  return 0;
}
