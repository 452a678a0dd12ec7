// `turnout tokens [--encoding cl100k_base|o200k_base] [--ids] [FILE]` (docs/REFERENCE.md §1):
// the token count of raw text, or its ids.
#include "cli/commands.hpp"
#include "tokenizer/tokenizer.hpp"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstddef>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace turnout::cli {
namespace {

struct TokensOptions {
  std::string encoding = "cl100k_base";
  bool print_ids = false;
  std::string file;  // empty: stdin
};

// The input's bytes. A regular file is mapped (its pages prefaulted in one call) rather
// than copied: reading 12-20 MB through a stream buffer that doubles as it grows cost a
// fifth of `turnout tokens` on CJK text (the copies and a page fault per 4 KB of every new
// buffer), as much as loading the vocabulary. Stdin and anything that cannot be mapped
// are read with read(2) into one string.
class InputText {
 public:
  InputText() = default;
  InputText(const InputText&) = delete;
  InputText& operator=(const InputText&) = delete;
  ~InputText() {
    if (mapping_ != nullptr) ::munmap(mapping_, mapped_bytes_);
  }

  // False if the input cannot be read.
  bool read(const std::string& file) {
    if (file.empty() || file == "-") return read_all(STDIN_FILENO);
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat status {};
    bool ok = false;
    if (::fstat(fd, &status) == 0 && S_ISREG(status.st_mode) && status.st_size > 0) {
      const auto bytes = static_cast<std::size_t>(status.st_size);
      void* const mapping = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
      if (mapping != MAP_FAILED) {
        mapping_ = mapping;
        mapped_bytes_ = bytes;
        ok = true;
      }
    }
    if (!ok) ok = read_all(fd);
    ::close(fd);
    return ok;
  }

  std::string_view text() const {
    if (mapping_ != nullptr) return {static_cast<const char*>(mapping_), mapped_bytes_};
    return read_;
  }

 private:
  bool read_all(int fd) {
    constexpr std::size_t kChunk = std::size_t{1} << 20;
    std::size_t used = 0;
    for (;;) {
      read_.resize(used + kChunk);
      const ssize_t got = ::read(fd, read_.data() + used, kChunk);
      if (got < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      if (got == 0) break;
      used += static_cast<std::size_t>(got);
    }
    read_.resize(used);
    return true;
  }

  void* mapping_ = nullptr;
  std::size_t mapped_bytes_ = 0;
  std::string read_;
};

int run_tokens(const TokensOptions& options) {
  const std::optional<tokenizer::EncodingId> encoding = tokenizer::parse_encoding_name(options.encoding);
  if (!encoding) {
    std::cerr << "turnout tokens: unknown encoding '" << options.encoding
              << "' (expected cl100k_base or o200k_base)\n";
    return 2;
  }
  std::ios::sync_with_stdio(false);
  InputText input;
  if (!input.read(options.file)) {
    std::cerr << "turnout tokens: cannot read " << options.file << "\n";
    return 2;
  }
  const tokenizer::Encoding& enc = tokenizer::Encoding::get(*encoding);
  if (!options.print_ids) {
    std::cout << enc.count(input.text()) << "\n";
    return 0;
  }
  std::vector<tokenizer::TokenId> ids;
  enc.encode(input.text(), ids);
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
