// The tokenizer against golden data produced by the reference (npm `tiktoken`, the WASM
// build of OpenAI's tiktoken; scripts/gen-golden.mjs), plus the properties the gateway
// relies on: decode round-trips, invalid UTF-8 replacement, model -> encoding mapping,
// and the generated Unicode tables agreeing with utf8proc.
#include "naive_bpe.hpp"
#include "tokenizer/embedded_vocabularies.hpp"
#include "tokenizer/pretokenizer.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/unicode_classes.hpp"
#include "tokenizer/utf8.hpp"
#include "tokenizer/vocabulary.hpp"

#include <gtest/gtest.h>
#include <utf8proc.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace turnout::tokenizer {
namespace {

using test::naive_encode;

const std::string kGoldenDir = std::string(TURNOUT_SOURCE_DIR) + "/tests/golden/";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> fields;
  while (true) {
    const std::size_t at = text.find(separator);
    fields.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return fields;
    text.remove_prefix(at + 1);
  }
}

std::string base64_decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  std::uint32_t bits = 0;
  int bit_count = 0;
  for (const char c : text) {
    const int v = value(c);
    if (v < 0) break;  // padding
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      out.push_back(static_cast<char>((bits >> bit_count) & 0xff));
    }
  }
  return out;
}

// FNV-1a 64 over each id as 4 little-endian bytes: how the generator summarises the ids
// of large inputs.
std::string fnv1a64_of_ids(const std::vector<TokenId>& ids) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const TokenId id : ids) {
    for (int shift = 0; shift < 32; shift += 8) {
      hash ^= (id >> shift) & 0xffu;
      hash *= 0x100000001b3ULL;
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return std::string("fnv1a64:") + hex;
}

std::string join_ids(const std::vector<TokenId>& ids) {
  std::string out;
  for (const TokenId id : ids) {
    if (!out.empty()) out.push_back(' ');
    out += std::to_string(id);
  }
  return out;
}

struct GoldenCase {
  std::size_t line = 0;
  std::string input;
  // Per encoding (cl100k_base, o200k_base): expected count and ids field.
  std::size_t count[2] = {0, 0};
  std::string ids[2];
};

std::vector<GoldenCase> load_golden_cases() {
  std::vector<GoldenCase> cases;
  const std::string text = read_file(kGoldenDir + "tokenizer_cases.tsv");
  std::size_t line_number = 0;
  for (const std::string_view line : split(text, '\n')) {
    ++line_number;
    if (line.empty()) continue;
    const std::vector<std::string_view> fields = split(line, '\t');
    if (fields.size() != 5) {
      ADD_FAILURE() << "tokenizer_cases.tsv:" << line_number << ": expected 5 fields";
      continue;
    }
    GoldenCase golden;
    golden.line = line_number;
    golden.input = fields[0].starts_with('@') ? read_file(kGoldenDir + std::string(fields[0].substr(1)))
                                              : base64_decode(fields[0]);
    for (int e = 0; e < 2; ++e) {
      golden.count[e] = std::stoull(std::string(fields[1 + 2 * e]));
      golden.ids[e] = std::string(fields[2 + 2 * e]);
    }
    cases.push_back(std::move(golden));
  }
  return cases;
}

const std::vector<GoldenCase>& golden_cases() {
  static const std::vector<GoldenCase> cases = load_golden_cases();
  return cases;
}

class GoldenTest : public testing::TestWithParam<EncodingId> {};

TEST_P(GoldenTest, IdsAndCountsMatchTheReference) {
  const Encoding& enc = Encoding::get(GetParam());
  const int column = GetParam() == EncodingId::cl100k_base ? 0 : 1;
  ASSERT_GT(golden_cases().size(), 5000u);
  int failures = 0;
  for (const GoldenCase& golden : golden_cases()) {
    std::vector<TokenId> ids;
    enc.encode(golden.input, ids);
    const std::string& expected = golden.ids[column];
    const std::string actual = expected.starts_with("fnv1a64:") ? fnv1a64_of_ids(ids) : join_ids(ids);
    const std::size_t count = enc.count(golden.input);
    if (actual != expected || count != golden.count[column] || ids.size() != golden.count[column]) {
      ADD_FAILURE() << "tokenizer_cases.tsv:" << golden.line << " (" << golden.input.size() << " bytes)\n"
                    << "  expected " << golden.count[column] << ": " << expected.substr(0, 300) << "\n"
                    << "  actual   " << count << ": " << actual.substr(0, 300);
      if (++failures >= 10) return;
    }
  }
}

TEST_P(GoldenTest, DecodeRoundTripsToTheReplacementDecodedInput) {
  const Encoding& enc = Encoding::get(GetParam());
  for (const GoldenCase& golden : golden_cases()) {
    std::vector<TokenId> ids;
    enc.encode(golden.input, ids);
    ASSERT_EQ(enc.decode(ids), replace_invalid_utf8(golden.input)) << "tokenizer_cases.tsv:" << golden.line;
  }
}

INSTANTIATE_TEST_SUITE_P(Encodings, GoldenTest, testing::Values(EncodingId::cl100k_base, EncodingId::o200k_base),
                         [](const testing::TestParamInfo<EncodingId>& param_info) {
                           return std::string(encoding_name(param_info.param));
                         });

// Long runs of one unit are single pieces far over the short-piece limit (BytePairMerger::kShortPieceLimit), so
// they take the long-piece merge and its shortcuts for equal-rank and ascending merges.
TEST_P(GoldenTest, LongRunsOfEachCharacterClassMatchTheNaiveMerge) {
  const Vocabulary vocab = Vocabulary::from_tiktoken(GetParam() == EncodingId::cl100k_base
                                                         ? embedded_cl100k_base_tiktoken()
                                                         : embedded_o200k_base_tiktoken())
                               .value();
  const Encoding& enc = Encoding::get(GetParam());
  const char* const units[] = {"a", "Z", " ", "\n", "!", "-", "=", "1", "\xc3\xa9" /* é */, "\xe2\x80\x94" /* em dash */,
                               "\xf0\x9f\x98\x80" /* emoji */, "ab", "ha", "=-", "'s", "aab", "\xe6\x97\xa5" /* 日 */};
  for (const char* unit : units) {
    for (const std::size_t bytes : {65u, 66u, 67u, 100u, 129u, 130u, 131u, 256u, 257u, 700u, 1500u}) {
      std::string text;
      while (text.size() < bytes) text += unit;
      std::vector<TokenId> ids;
      enc.encode(text, ids);
      const std::vector<TokenId> expected = GetParam() == EncodingId::cl100k_base
                                                ? naive_encode<Cl100kScanner>(vocab, text)
                                                : naive_encode<O200kScanner>(vocab, text);
      EXPECT_EQ(ids, expected) << "unit \"" << unit << "\" x " << text.size() << " bytes";
    }
  }
}

// Two-byte pieces that are a token are answered from the byte-pair table before the piece
// cache and the merge (tokenizer.cpp), and pieces of one character take the character
// table's or the byte-level merge: each such text alone must give the naive merge's tokens,
// including the characters that are not one token.
TEST_P(GoldenTest, EveryTwoByteTextAndThreeByteCharacterMatchesTheNaiveMerge) {
  const Vocabulary vocab = Vocabulary::from_tiktoken(GetParam() == EncodingId::cl100k_base
                                                         ? embedded_cl100k_base_tiktoken()
                                                         : embedded_o200k_base_tiktoken())
                               .value();
  const Encoding& enc = Encoding::get(GetParam());
  std::vector<std::string> texts;
  for (unsigned first = 0; first < 0x80; ++first) {
    for (unsigned second = 0; second < 0x80; ++second) texts.push_back({static_cast<char>(first), static_cast<char>(second)});
  }
  for (char32_t code_point = 0x80; code_point < 0x10000; ++code_point) {
    if (code_point >= 0xd800 && code_point < 0xe000) continue;  // surrogates: not valid UTF-8
    std::string text;
    if (code_point < 0x800) {
      text = {static_cast<char>(0xc0 | (code_point >> 6)), static_cast<char>(0x80 | (code_point & 0x3f))};
    } else {
      text = {static_cast<char>(0xe0 | (code_point >> 12)), static_cast<char>(0x80 | ((code_point >> 6) & 0x3f)),
              static_cast<char>(0x80 | (code_point & 0x3f))};
    }
    texts.push_back(text);
  }
  for (const std::string& text : texts) {
    std::vector<TokenId> ids;
    enc.encode(text, ids);
    const std::vector<TokenId> expected = GetParam() == EncodingId::cl100k_base
                                              ? naive_encode<Cl100kScanner>(vocab, text)
                                              : naive_encode<O200kScanner>(vocab, text);
    ASSERT_EQ(ids, expected) << "text of " << text.size() << " bytes, first " << int{static_cast<unsigned char>(text[0])};
  }
}

TEST(Tokenizer, SpecialTokenTextIsOrdinaryText) {
  const Encoding& enc = Encoding::get(EncodingId::cl100k_base);
  std::vector<TokenId> ids;
  enc.encode("<|endoftext|>", ids);
  EXPECT_GT(ids.size(), 1u);
  for (const TokenId id : ids) EXPECT_LT(id, 100257u);
}

TEST(Tokenizer, DecodeKnowsSpecialTokensAndSkipsUnknownIds) {
  const Encoding& cl100k = Encoding::get(EncodingId::cl100k_base);
  const Encoding& o200k = Encoding::get(EncodingId::o200k_base);
  const std::vector<TokenId> cl100k_ids = {100257, 5000000, 100276};
  EXPECT_EQ(cl100k.decode(cl100k_ids), "<|endoftext|><|endofprompt|>");
  const std::vector<TokenId> o200k_ids = {199999, 199998};
  EXPECT_EQ(o200k.decode(o200k_ids), "<|endoftext|>");
}

TEST(Tokenizer, EmptyInputHasNoTokens) {
  for (const EncodingId id : {EncodingId::cl100k_base, EncodingId::o200k_base}) {
    std::vector<TokenId> ids;
    Encoding::get(id).encode("", ids);
    EXPECT_TRUE(ids.empty());
    EXPECT_EQ(Encoding::get(id).count(""), 0u);
  }
}

TEST(Tokenizer, EncodeAppendsToExistingIds) {
  const Encoding& enc = Encoding::get(EncodingId::o200k_base);
  std::vector<TokenId> ids = {42};
  enc.encode("hello", ids);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], 42u);
}

// Encodings are built lazily on first use and then shared: threads racing to use them
// must all get the same instance and the same results.
TEST(Tokenizer, ConcurrentFirstUseIsSafeAndConsistent) {
  const std::string text = read_file(kGoldenDir + "corpus/multilingual.txt").substr(0, 20000);
  std::vector<std::thread> threads;
  std::vector<std::size_t> counts(8);
  std::vector<const Encoding*> instances(8);
  for (std::size_t t = 0; t < counts.size(); ++t) {
    threads.emplace_back([&, t] {
      const EncodingId id = t % 2 == 0 ? EncodingId::cl100k_base : EncodingId::o200k_base;
      instances[t] = &Encoding::get(id);
      counts[t] = instances[t]->count(text);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (std::size_t t = 2; t < counts.size(); ++t) {
    EXPECT_EQ(instances[t], instances[t % 2]);
    EXPECT_EQ(counts[t], counts[t % 2]);
  }
}

TEST(Tokenizer, EncodingIdReportsItself) {
  EXPECT_EQ(Encoding::get(EncodingId::cl100k_base).id(), EncodingId::cl100k_base);
  EXPECT_EQ(Encoding::get(EncodingId::o200k_base).id(), EncodingId::o200k_base);
}

// Python's bytes.decode("utf-8", errors="replace") results for these inputs.
TEST(Utf8, InvalidSequencesAreReplacedPerMaximalSubpart) {
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_EQ(replace_invalid_utf8("a\x80z"), "a" + fffd + "z");
  EXPECT_EQ(replace_invalid_utf8("\xed\xa0\x80"), fffd + fffd + fffd);  // surrogate: 3 subparts
  EXPECT_EQ(replace_invalid_utf8("\xe2\x82"), fffd);                    // truncated: 1 subpart
  EXPECT_EQ(replace_invalid_utf8("\xf0\x9f\x98"), fffd);
  EXPECT_EQ(replace_invalid_utf8("\xc0\xaf"), fffd + fffd);  // overlong
  EXPECT_EQ(replace_invalid_utf8("\xf4\x90\x80\x80"), fffd + fffd + fffd + fffd);
  EXPECT_EQ(replace_invalid_utf8("\xe2\x28\xa1"), fffd + "(" + fffd);
  EXPECT_EQ(replace_invalid_utf8("\xef\xbb\xbf\xf0\x9f\x98\x80"), "\xef\xbb\xbf\xf0\x9f\x98\x80");
  EXPECT_TRUE(is_valid_utf8("plain \xe6\x97\xa5\xe6\x9c\xac"));
  EXPECT_FALSE(is_valid_utf8("plain ascii then \xff"));
}

TEST(EncodingNames, ParseAndPrint) {
  EXPECT_EQ(parse_encoding_name("cl100k_base"), EncodingId::cl100k_base);
  EXPECT_EQ(parse_encoding_name("o200k_base"), EncodingId::o200k_base);
  EXPECT_EQ(parse_encoding_name("p50k_base"), std::nullopt);
  EXPECT_EQ(encoding_name(EncodingId::o200k_base), "o200k_base");
}

// tiktoken's model.py table (model_to_encoding.json in the npm package), plus families.
TEST(EncodingForModel, FollowsTiktokensTable) {
  constexpr auto o200k = EncodingId::o200k_base;
  constexpr auto cl100k = EncodingId::cl100k_base;
  for (const char* model : {"gpt-4o", "gpt-4o-mini", "gpt-4o-2024-08-06", "chatgpt-4o-latest", "gpt-4.1",
                            "gpt-4.1-nano", "gpt-4.5-preview", "gpt-5", "gpt-5-mini", "o1", "o1-mini", "o3",
                            "o3-mini", "o4-mini", "ft:gpt-4o-mini-2024-07-18:org::abc"}) {
    EXPECT_EQ(encoding_for_model(model, cl100k), o200k) << model;
  }
  for (const char* model : {"gpt-4", "gpt-4-turbo", "gpt-4-32k", "gpt-3.5-turbo", "gpt-3.5-turbo-16k",
                            "gpt-35-turbo", "text-embedding-3-small", "text-embedding-ada-002",
                            "ft:gpt-3.5-turbo:org::abc", "davinci-002"}) {
    EXPECT_EQ(encoding_for_model(model, o200k), cl100k) << model;
  }
  EXPECT_EQ(encoding_for_model("claude-3-opus", o200k), o200k);
  EXPECT_EQ(encoding_for_model("llama-3", cl100k), cl100k);
}

// The generated class table (Unicode 16.0, from node's ICU checked against the reference)
// must agree with Debian's utf8proc (Unicode 15.0) on every code point utf8proc knows,
// except where Unicode 16.0 changed the general category.
TEST(UnicodeClasses, AgreeWithUtf8procWhereItIsAssigned) {
  constexpr char32_t kRecategorisedIn16 = 0x295;  // LATIN LETTER PHARYNGEAL VOICED FRICATIVE: Ll -> Lo
  auto expected_class = [](utf8proc_int32_t cp) {
    static constexpr char32_t kWhiteSpace[] = {0x09,   0x0a,   0x0b,   0x0c,   0x0d,   0x20,   0x85,
                                               0xa0,   0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
                                               0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028,
                                               0x2029, 0x202f, 0x205f, 0x3000};
    for (const char32_t space : kWhiteSpace) {
      if (static_cast<char32_t>(cp) == space) return UnicodeClass::white_space;
    }
    switch (utf8proc_category(cp)) {
      case UTF8PROC_CATEGORY_LU: return UnicodeClass::uppercase_letter;
      case UTF8PROC_CATEGORY_LL: return UnicodeClass::lowercase_letter;
      case UTF8PROC_CATEGORY_LT: return UnicodeClass::titlecase_letter;
      case UTF8PROC_CATEGORY_LM: return UnicodeClass::modifier_letter;
      case UTF8PROC_CATEGORY_LO: return UnicodeClass::other_letter;
      case UTF8PROC_CATEGORY_MN:
      case UTF8PROC_CATEGORY_MC:
      case UTF8PROC_CATEGORY_ME: return UnicodeClass::mark;
      case UTF8PROC_CATEGORY_ND:
      case UTF8PROC_CATEGORY_NL:
      case UTF8PROC_CATEGORY_NO: return UnicodeClass::number;
      default: return UnicodeClass::other;
    }
  };
  int disagreements = 0;
  for (utf8proc_int32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp >= 0xd800 && cp < 0xe000) continue;
    if (utf8proc_category(cp) == UTF8PROC_CATEGORY_CN) continue;  // newer than utf8proc's Unicode
    if (static_cast<char32_t>(cp) == kRecategorisedIn16) continue;
    if (unicode_class_of(static_cast<char32_t>(cp)) != expected_class(cp)) {
      ADD_FAILURE() << "U+" << std::hex << cp << std::dec << ": table "
                    << static_cast<int>(unicode_class_of(static_cast<char32_t>(cp))) << ", utf8proc "
                    << static_cast<int>(expected_class(cp));
      if (++disagreements >= 20) return;
    }
    // The pre-tokenizer's flags (a direct table below U+2000, the class table above).
    if (cp >= 0x80 && char_flags(static_cast<char32_t>(cp)) != flags_of_class(expected_class(cp))) {
      ADD_FAILURE() << "U+" << std::hex << cp << std::dec << ": flags "
                    << static_cast<int>(char_flags(static_cast<char32_t>(cp))) << ", utf8proc's class "
                    << static_cast<int>(expected_class(cp));
      if (++disagreements >= 20) return;
    }
  }
}

TEST(UnicodeClasses, WhiteSpaceIsTheRegexCratesNotJavaScripts) {
  EXPECT_EQ(unicode_class_of(0x85), UnicodeClass::white_space);
  EXPECT_EQ(unicode_class_of(0x3000), UnicodeClass::white_space);
  EXPECT_EQ(unicode_class_of(0xfeff), UnicodeClass::other);  // JavaScript's \s has it
  EXPECT_EQ(unicode_class_of(0x180e), UnicodeClass::other);
}

// `turnout tokens` (docs/REFERENCE.md §1), run as a process. The binary is found next to this
// test in the build tree; the test is skipped when it has not been built.
class TokensCommandTest : public testing::Test {
 protected:
  void SetUp() override {
    const std::filesystem::path build_dir = std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path();
    binary_ = build_dir / "src" / "cli" / "turnout";
    if (!std::filesystem::exists(binary_)) GTEST_SKIP() << "turnout binary not built at " << binary_;
    input_ = std::filesystem::temp_directory_path() / ("turnout_tokens_" + std::to_string(::getpid()));
  }
  void TearDown() override { std::filesystem::remove(input_); }

  struct Outcome {
    int exit_code;
    std::string output;
  };
  Outcome run(const std::string& arguments) const {
    const std::string command = binary_.string() + " tokens " + arguments + " 2>/dev/null";
    FILE* pipe = ::popen(command.c_str(), "r");
    std::string output;
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
    const int status = ::pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
  }
  void write_input(const std::string& bytes) const {
    std::ofstream(input_, std::ios::binary) << bytes;
  }

  std::filesystem::path binary_;
  std::filesystem::path input_;
};

TEST_F(TokensCommandTest, PrintsTheReferenceCountAndIdsOfAFile) {
  int checked = 0;
  for (const GoldenCase& golden : golden_cases()) {
    if (golden.ids[0].starts_with("fnv1a64:") || golden.line % 211 != 0) continue;  // a sample
    write_input(golden.input);
    EXPECT_EQ(run(input_.string()).output, std::to_string(golden.count[0]) + "\n") << "case " << golden.line;
    EXPECT_EQ(run("--ids " + input_.string()).output, golden.ids[0] + "\n") << "case " << golden.line;
    EXPECT_EQ(run("--encoding o200k_base --ids " + input_.string()).output, golden.ids[1] + "\n")
        << "case " << golden.line;
    ++checked;
  }
  EXPECT_GT(checked, 10);
}

TEST_F(TokensCommandTest, ReadsStandardInput) {
  write_input("hello world");
  const Outcome outcome = run("--encoding o200k_base < " + input_.string());
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_EQ(outcome.output, std::to_string(Encoding::get(EncodingId::o200k_base).count("hello world")) + "\n");
}

TEST_F(TokensCommandTest, UsageErrorsExitWithTwo) {
  write_input("x");
  EXPECT_EQ(run("--encoding p50k_base " + input_.string()).exit_code, 2);
  EXPECT_EQ(run(input_.string() + ".missing").exit_code, 2);
}

}  // namespace
}  // namespace turnout::tokenizer
