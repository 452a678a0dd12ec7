// Two builds of the tokenizer in one process, measured pass by pass in alternation
// (built and run by scripts/tokenizer-ab.sh, which supplies the two copies of src/tokenizer
// as tokenizer_a/ and tokenizer_b/, each in its own namespace).
//
// Why: the 2-core VMs this project runs on drift by 20-40% within minutes, so two
// benchmark runs of different binaries minutes apart cannot show a 5% change. Here each
// pass of A is followed by a pass of B, the speed-up is the median of the per-pair
// ratios, and a change of 1-2% is visible (A against itself reads 1.00 +- 0.01).
//
//   tokenizer_ab CORPUS_FILE ENCODING PASSES cold|warm count|ids
#include "tokenizer_a/tokenizer.hpp"
#include "tokenizer_b/tokenizer.hpp"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

double thread_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

double quantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  return values[static_cast<std::size_t>(q * static_cast<double>(values.size() - 1))];
}

// One side of the comparison: a pass over the text with that build's encoding.
template <class Encoding, class EncodingId>
struct Side {
  const Encoding* encoding;
  bool cold;
  bool ids;
  std::vector<std::uint32_t> out;

  Side(EncodingId id, bool cold_passes, bool with_ids)
      : encoding(&Encoding::get(id)), cold(cold_passes), ids(with_ids) {}

  // Returns the pass's CPU seconds; `count` gets the number of tokens (`out` the ids).
  double pass(const std::string& text, std::size_t& count) {
    if (cold) Encoding::clear_thread_caches();
    const double start = thread_cpu_seconds();
    if (ids) {
      out.clear();
      encoding->encode(text, out);
      count = out.size();
    } else {
      count = encoding->count(text);
    }
    return thread_cpu_seconds() - start;
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s CORPUS_FILE cl100k_base|o200k_base PASSES cold|warm count|ids\n", argv[0]);
    return 2;
  }
  std::ifstream file(argv[1], std::ios::binary);
  std::stringstream contents;
  contents << file.rdbuf();
  const std::string text = contents.str();
  const std::string encoding_name = argv[2];
  const int passes = std::max(1, std::atoi(argv[3]));
  const bool cold = std::string(argv[4]) == "cold";
  const bool ids = std::string(argv[5]) == "ids";
  if (text.empty() || (encoding_name != "cl100k_base" && encoding_name != "o200k_base")) {
    std::fprintf(stderr, "tokenizer_ab: empty corpus or unknown encoding\n");
    return 2;
  }
  namespace a = turnout::tokenizer_a;
  namespace b = turnout::tokenizer_b;
  const bool o200k = encoding_name == "o200k_base";
  Side<a::Encoding, a::EncodingId> side_a(o200k ? a::EncodingId::o200k_base : a::EncodingId::cl100k_base, cold, ids);
  Side<b::Encoding, b::EncodingId> side_b(o200k ? b::EncodingId::o200k_base : b::EncodingId::cl100k_base, cold, ids);

  std::size_t count_a = 0;
  std::size_t count_b = 0;
  side_a.pass(text, count_a);  // warm-up: page in tables, grow buffers
  side_b.pass(text, count_b);
  std::vector<double> seconds_a;
  std::vector<double> seconds_b;
  std::vector<double> speedups;
  for (int pass = 0; pass < passes; ++pass) {
    // Always A then B, so each pass follows a pass of the other build: alternating the
    // order puts two passes of one build next to each other, and the second of those
    // finds its tables in cache (that skewed the ratio of A against itself by 3-6%).
    const double a_seconds = side_a.pass(text, count_a);
    const double b_seconds = side_b.pass(text, count_b);
    if (count_a != count_b || (ids && side_a.out != side_b.out)) {
      std::fprintf(stderr, "tokenizer_ab: A and B disagree (%zu and %zu tokens)\n", count_a, count_b);
      return 1;
    }
    seconds_a.push_back(a_seconds);
    seconds_b.push_back(b_seconds);
    speedups.push_back(a_seconds / b_seconds);
  }
  const double megabytes = static_cast<double>(text.size()) / 1e6;
  std::printf("%s %s %s: A %.1f MB/s, B %.1f MB/s, B/A %.3f (middle half of passes %.3f-%.3f), %zu tokens\n",
              encoding_name.c_str(), cold ? "cold" : "warm", ids ? "ids" : "count", megabytes / quantile(seconds_a, 0.5),
              megabytes / quantile(seconds_b, 0.5), quantile(speedups, 0.5), quantile(speedups, 0.25), quantile(speedups, 0.75),
              count_a);
  return 0;
}
