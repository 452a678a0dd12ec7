// `turnout tokens [--encoding cl100k_base|o200k_base] [--ids] [FILE]` (docs/REFERENCE.md §1):
// the token count of raw text, or its ids.
#include "cli/commands.hpp"
#include "tokenizer/tokenizer.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace turnout::cli {
namespace {

struct TokensOptions {
  std::string encoding = "cl100k_base";
  bool print_ids = false;
  std::string file;  // empty: stdin
};

std::optional<std::string> read_all_bytes(const std::string& file) {
  if (file.empty() || file == "-") {
    std::ostringstream content;
    content << std::cin.rdbuf();
    return std::move(content).str();
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return std::move(content).str();
}

int run_tokens(const TokensOptions& options) {
  const std::optional<tokenizer::EncodingId> encoding = tokenizer::parse_encoding_name(options.encoding);
  if (!encoding) {
    std::cerr << "turnout tokens: unknown encoding '" << options.encoding
              << "' (expected cl100k_base or o200k_base)\n";
    return 2;
  }
  std::ios::sync_with_stdio(false);
  const std::optional<std::string> text = read_all_bytes(options.file);
  if (!text) {
    std::cerr << "turnout tokens: cannot read " << options.file << "\n";
    return 2;
  }
  const tokenizer::Encoding& enc = tokenizer::Encoding::get(*encoding);
  if (!options.print_ids) {
    std::cout << enc.count(*text) << "\n";
    return 0;
  }
  std::vector<tokenizer::TokenId> ids;
  enc.encode(*text, ids);
  std::string line;
  line.reserve(ids.size() * 7 + 1);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) line.push_back(' ');
    line += std::to_string(ids[i]);
  }
  line.push_back('\n');
  std::cout << line;
  return 0;
}

}  // namespace

void add_tokens_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<TokensOptions>();
  CLI::App* command = app.add_subcommand("tokens", "Print the token count (or ids) of raw text from FILE or stdin");
  command->add_option("--encoding", options->encoding, "cl100k_base (default) or o200k_base")
      ->check(CLI::IsMember({"cl100k_base", "o200k_base"}));
  command->add_flag("--ids", options->print_ids, "print the token ids, space-separated, instead of the count");
  command->add_option("file", options->file, "input file (default: stdin)");
  command->callback([options, &exit_code] { exit_code = run_tokens(*options); });
}

}  // namespace turnout::cli
