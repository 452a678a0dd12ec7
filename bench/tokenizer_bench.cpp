// Tokenizer throughput (single thread), worst cases and start-up cost.
//
//   Corpus/<encoding>/<category>/<count|ids>: MB/s (bytes_per_second) and tokens/s on the
//     golden corpus (tests/golden/corpus: english, code, multilingual, adversarial), each
//     call starting with an empty piece cache (Encoding::clear_thread_caches(), inside the
//     timed loop): the speed on text the thread has not seen.
//   Corpus/.../<count|ids>/warm: the same calls with the thread's piece cache kept, as when
//     a gateway counts a chat history that is re-sent with every turn (and as the npm
//     gpt-tokenizer, whose piece cache is always on, is measured by tokenizer_compare.mjs).
//   Run/<encoding>/<what>/<bytes>: one character repeated (100 KB, 300 KB and 1 MB), and
//     Run/<encoding>/<what>_BigO: Google Benchmark's fit of time against length (expect
//     "N" or "NlgN", never "N^2"; _RMS is how well it fits). ns_per_byte should stay flat.
//   Load/<encoding>: parsing the embedded vocabulary, what Encoding::get costs once;
//     vocabulary_bytes is the heap it keeps.
// bench/tokenizer_compare.mjs runs the same corpus through the JavaScript tokenizers.
#include "tokenizer/embedded_vocabularies.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/vocabulary.hpp"

#include <benchmark/benchmark.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using turnout::tokenizer::Encoding;
using turnout::tokenizer::EncodingId;
using turnout::tokenizer::TokenId;

std::string read_corpus(const std::string& category) {
  const std::string path = std::string(TURNOUT_SOURCE_DIR) + "/tests/golden/corpus/" + category + ".txt";
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

void report(benchmark::State& state, std::size_t bytes, std::size_t tokens) {
  const auto iterations = static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bytes));
  state.counters["tokens_per_second"] =
      benchmark::Counter(iterations * static_cast<double>(tokens), benchmark::Counter::kIsRate);
  state.counters["ns_per_byte"] = benchmark::Counter(
      iterations * static_cast<double>(bytes) * 1e-9, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

enum class Cache { cold, warm };

void run_count(benchmark::State& state, EncodingId id, const std::string& text, Cache cache) {
  const Encoding& enc = Encoding::get(id);
  std::size_t tokens = 0;
  Encoding::clear_thread_caches();
  for (auto _ : state) {
    if (cache == Cache::cold) Encoding::clear_thread_caches();
    tokens = enc.count(text);
    benchmark::DoNotOptimize(tokens);
  }
  report(state, text.size(), tokens);
}

void run_encode(benchmark::State& state, EncodingId id, const std::string& text, Cache cache) {
  const Encoding& enc = Encoding::get(id);
  std::vector<TokenId> ids;
  Encoding::clear_thread_caches();
  for (auto _ : state) {
    if (cache == Cache::cold) Encoding::clear_thread_caches();
    ids.clear();
    enc.encode(text, ids);
    benchmark::DoNotOptimize(ids.data());
  }
  report(state, text.size(), ids.size());
}

std::string repeated(const std::string& unit, std::size_t bytes) {
  std::string text;
  text.reserve(bytes + unit.size());
  while (text.size() + unit.size() <= bytes) text += unit;
  return text;
}

void load_vocabulary(benchmark::State& state, EncodingId id) {
  const std::string_view data = id == EncodingId::cl100k_base ? turnout::tokenizer::embedded_cl100k_base_tiktoken()
                                                              : turnout::tokenizer::embedded_o200k_base_tiktoken();
  std::size_t memory = 0;
  for (auto _ : state) {
    auto vocab = turnout::tokenizer::Vocabulary::from_tiktoken(data);
    memory = vocab->memory_bytes();
    benchmark::DoNotOptimize(memory);
  }
  state.counters["vocabulary_bytes"] = static_cast<double>(memory);
}

// What Encoding::preload_all costs at start-up: both vocabularies parsed at once, one per
// thread (wall time; the machine's cores decide how much they overlap).
void load_both_vocabularies(benchmark::State& state) {
  for (auto _ : state) {
    std::thread o200k([] {
      auto vocab = turnout::tokenizer::Vocabulary::from_tiktoken(turnout::tokenizer::embedded_o200k_base_tiktoken());
      benchmark::DoNotOptimize(vocab->size());
    });
    auto vocab = turnout::tokenizer::Vocabulary::from_tiktoken(turnout::tokenizer::embedded_cl100k_base_tiktoken());
    benchmark::DoNotOptimize(vocab->size());
    o200k.join();
  }
}

struct NamedEncoding {
  EncodingId id;
  const char* name;
};
constexpr NamedEncoding kEncodings[] = {{EncodingId::cl100k_base, "cl100k_base"},
                                        {EncodingId::o200k_base, "o200k_base"}};

struct RunUnit {
  const char* name;
  const char* unit;
};
constexpr RunUnit kRunUnits[] = {
    {"letter", "a"}, {"space", " "}, {"digit", "1"}, {"emoji", "\xf0\x9f\x98\x80"}, {"punctuation", "!"},
};

const bool kRegistered = [] {
  for (const NamedEncoding& encoding : kEncodings) {
    const EncodingId id = encoding.id;
    const std::string prefix = encoding.name;
    for (const char* category : {"english", "code", "multilingual", "adversarial"}) {
      auto text = std::make_shared<std::string>(read_corpus(category));
      const std::string name = "Corpus/" + prefix + "/" + category;
      for (const Cache cache : {Cache::cold, Cache::warm}) {
        const std::string suffix = cache == Cache::warm ? "/warm" : "";
        benchmark::RegisterBenchmark((name + "/count" + suffix).c_str(), [id, text, cache](benchmark::State& state) {
          run_count(state, id, *text, cache);
        });
        benchmark::RegisterBenchmark((name + "/ids" + suffix).c_str(), [id, text, cache](benchmark::State& state) {
          run_encode(state, id, *text, cache);
        });
      }
    }
    for (const RunUnit& run : kRunUnits) {
      const std::string unit = run.unit;
      benchmark::RegisterBenchmark(("Run/" + prefix + "/" + run.name).c_str(),
                                   [id, unit](benchmark::State& state) {
                                     const std::string text = repeated(unit, static_cast<std::size_t>(state.range(0)));
                                     run_count(state, id, text, Cache::cold);
                                     state.SetComplexityN(static_cast<std::int64_t>(text.size()));
                                   })
          ->Arg(100'000)
          ->Arg(300'000)
          ->Arg(1'000'000)
          ->Complexity(benchmark::oAuto)
          ->Unit(benchmark::kMillisecond);
    }
    benchmark::RegisterBenchmark(("Load/" + prefix).c_str(),
                                 [id](benchmark::State& state) { load_vocabulary(state, id); })
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("Load/both, in parallel", load_both_vocabularies)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
