// `turnout tokens [--encoding cl100k_base|o200k_base] [--ids] [FILE]` (docs/REFERENCE.md §1):
// the token count of raw text, or its ids.
#include "cli/commands.hpp"
#include "tokenizer/tokenizer.hpp"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstddef>
#include <cstring>
#include <iostream>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <signal.h>
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

// Mapped files are read in place: a file truncated while it is counted, or a read error
// under the mapping, raises SIGBUS at the first access past what is left. That ends the
// command with a message and exit 1 instead of a "Bus error" core dump (only async-signal-
// safe calls here). A SIGBUS outside the mapping (a real fault elsewhere) keeps its default
// effect: the handler steps aside and the faulting access repeats. The mapping's bounds
// are the one piece of process-wide state, as a signal handler can reach nothing else.
std::atomic<std::uintptr_t> mapped_input_begin{0};
std::atomic<std::uintptr_t> mapped_input_end{0};

extern "C" void report_input_fault(int, siginfo_t* info, void*) {
  const auto address = reinterpret_cast<std::uintptr_t>(info->si_addr);
  if (address >= mapped_input_begin.load() && address < mapped_input_end.load()) {
    static constexpr char kMessage[] = "turnout tokens: the input file changed or failed while it was read\n";
    [[maybe_unused]] const ssize_t ignored = ::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
    ::_exit(1);
  }
  ::signal(SIGBUS, SIG_DFL);
}

void report_faults_of_mapped_input(const void* mapping, std::size_t bytes) {
  mapped_input_begin = reinterpret_cast<std::uintptr_t>(mapping);
  mapped_input_end = reinterpret_cast<std::uintptr_t>(mapping) + bytes;
  struct sigaction action {};
  action.sa_sigaction = report_input_fault;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGBUS, &action, nullptr);
}

// The input's bytes. A regular file is mapped (its pages prefaulted in one call) rather
// than copied: reading 12-20 MB through a stream buffer that doubles as it grows cost a
// fifth of `turnout tokens` on CJK text (the copies and a page fault per 4 KB of every new
// buffer), as much as loading the vocabulary; read(2) into a buffer of the file's size
// still cost 10-15% more than the mapping (its pages zeroed and the copy). Stdin and
// anything that cannot be mapped are read with read(2) into one string.
class InputText {
 public:
  InputText() = default;
  InputText(const InputText&) = delete;
  InputText& operator=(const InputText&) = delete;
  ~InputText() {
    if (mapping_ != nullptr) ::munmap(mapping_, mapped_bytes_);
  }

  // Why the input could not be had: the errno, and whether the file was opened and then
  // failed while it was read (exit 1, as a mapped file's fault is) rather than could not be
  // opened or is a directory (a usage error, exit 2).
  struct Failure {
    int error = 0;
    bool while_reading = false;
  };
  std::optional<Failure> read(const std::string& file) {
    if (file.empty() || file == "-") return read_all(STDIN_FILENO);
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Failure{errno};
    struct stat status {};
    std::optional<Failure> failure;
    if (::fstat(fd, &status) != 0) {
      failure = Failure{errno};
    } else if (S_ISDIR(status.st_mode)) {
      failure = Failure{EISDIR};
    } else if (!(S_ISREG(status.st_mode) && status.st_size > 0 && map(fd, static_cast<std::size_t>(status.st_size)))) {
      failure = read_all(fd);  // /proc files and pipes say a length of 0; and any mapping refused
    }
    ::close(fd);
    return failure;
  }

  std::string_view text() const {
    if (mapping_ != nullptr) return {static_cast<const char*>(mapping_), mapped_bytes_};
    return read_;
  }

 private:
  bool map(int fd, std::size_t bytes) {
    void* const mapping = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (mapping == MAP_FAILED) return false;
    report_faults_of_mapped_input(mapping, bytes);
    mapping_ = mapping;
    mapped_bytes_ = bytes;
    return true;
  }

  std::optional<Failure> read_all(int fd) {
    constexpr std::size_t kChunk = std::size_t{1} << 20;
    std::size_t used = 0;
    for (;;) {
      read_.resize(used + kChunk);
      const ssize_t got = ::read(fd, read_.data() + used, kChunk);
      if (got < 0) {
        if (errno == EINTR) continue;
        // A directory given as stdin (`< /`) is a usage error like a directory FILE.
        return Failure{errno, errno != EISDIR};
      }
      if (got == 0) break;
      used += static_cast<std::size_t>(got);
    }
    read_.resize(used);
    return std::nullopt;
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
  if (const auto failure = input.read(options.file)) {
    const std::string name = options.file.empty() || options.file == "-" ? "stdin" : options.file;
    if (failure->while_reading) {
      std::cerr << "turnout tokens: " << name << " failed while it was read: " << std::strerror(failure->error) << "\n";
      return 1;
    }
    std::cerr << "turnout tokens: cannot read " << name << ": " << std::strerror(failure->error) << "\n";
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
  command->callback([options, &exit_code] {
    try {
      exit_code = run_tokens(*options);
    } catch (const std::bad_alloc&) {
      // An input larger than the memory the process may take: a message, not an abort.
      std::cerr << "turnout tokens: not enough memory for the input\n";
      exit_code = 1;
    }
  });
}

}  // namespace turnout::cli
