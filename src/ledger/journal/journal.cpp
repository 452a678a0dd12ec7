#include "ledger/journal/journal.hpp"

#include "ledger/journal/record_codec.hpp"

#include <boost/crc.hpp>
#include <fmt/format.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <system_error>

namespace turnout::ledger {
namespace {

constexpr std::uint32_t kMagic = 0x4a484e54;  // "TNHJ" little-endian
constexpr std::uint32_t kFormat = 1;
constexpr std::string_view kInfix = ".turnout-handoff-";

std::uint64_t random_u64() {
  std::random_device entropy;
  return (std::uint64_t{entropy()} << 32) | entropy();
}

template <typename T>
void store_at(std::string& buffer, std::size_t at, T value) {
  std::memcpy(buffer.data() + at, &value, sizeof(T));
}

template <typename T>
T load_at(std::string_view bytes, std::size_t at) {
  T value;
  std::memcpy(&value, bytes.data() + at, sizeof(T));
  return value;
}

std::string errno_text(int error) { return std::error_code(error, std::generic_category()).message(); }

// 0, or the failing call's errno (EIO for a write that took no byte without one).
int pwrite_all(int fd, std::string_view bytes, std::uint64_t at) {
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno != 0 ? errno : EIO;
    if (n == 0) return EIO;
    bytes.remove_prefix(static_cast<std::size_t>(n));
    at += static_cast<std::uint64_t>(n);
  }
  return 0;
}

// Reads up to `size` bytes at `at`; fewer at the end of the file.
Result<std::string> pread_some(int fd, std::uint64_t at, std::size_t size) {
  std::string bytes(size, '\0');
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n = ::pread(fd, bytes.data() + got, size - got, static_cast<off_t>(at + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(fmt::format("reading the journal: {}", errno_text(errno)));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  bytes.resize(got);
  return Result<std::string>(boost::system::in_place_value, std::move(bytes));
}

struct SegmentHeader {
  std::uint64_t generation = 0;
  std::uint64_t first_seq = 0;
};

void encode_header(std::string& buffer, std::uint64_t generation, std::uint64_t first_seq, std::uint64_t segment_bytes) {
  store_at<std::uint32_t>(buffer, 0, kMagic);
  store_at<std::uint32_t>(buffer, 4, kFormat);
  store_at<std::uint64_t>(buffer, 8, generation);
  store_at<std::uint64_t>(buffer, 16, first_seq);
  store_at<std::uint64_t>(buffer, 24, segment_bytes);
  store_at<std::uint32_t>(buffer, 32, crc32c(std::string_view(buffer).substr(0, 32)));
  store_at<std::uint32_t>(buffer, 36, 0);
}

std::optional<SegmentHeader> decode_header(std::string_view bytes, std::uint64_t segment_bytes) {
  if (bytes.size() < Journal::kSegmentHeaderBytes) return std::nullopt;
  if (load_at<std::uint32_t>(bytes, 0) != kMagic || load_at<std::uint32_t>(bytes, 4) != kFormat ||
      load_at<std::uint64_t>(bytes, 24) != segment_bytes ||
      load_at<std::uint32_t>(bytes, 32) != crc32c(bytes.substr(0, 32))) {
    return std::nullopt;
  }
  return SegmentHeader{load_at<std::uint64_t>(bytes, 8), load_at<std::uint64_t>(bytes, 16)};
}

// The segment size of a journal file: half its size (open() sizes the file to two segments).
Result<std::uint64_t> segment_size(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return make_error(fmt::format("journal: {}", errno_text(errno)));
  return static_cast<std::uint64_t>(st.st_size) / 2;
}

bool has_valid_header(int fd) {
  const auto segment = segment_size(fd);
  if (!segment || *segment < Journal::kSegmentHeaderBytes) return false;
  for (unsigned s = 0; s < 2; ++s) {
    const auto head = pread_some(fd, s * *segment, Journal::kSegmentHeaderBytes);
    if (head && decode_header(*head, *segment)) return true;
  }
  return false;
}

// True while `path` still names the file open as `fd` (same device and inode).
bool still_named(int fd, const std::string& path) {
  struct stat held {};
  struct stat named {};
  if (::fstat(fd, &held) != 0 || ::stat(path.c_str(), &named) != 0) return false;
  return held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

// Renames a damaged journal at `path` ("<base>.turnout-handoff-<n>") to
// "<base>.turnout-handoff-damaged-<n>" (".<k>" added while that name is taken), which the
// replay's digits-only suffix filter passes over. link(2) then unlink(2): never replaces a
// file already set aside, and keeps the mode.
Result<std::string> set_aside(const std::string& path) {
  const std::size_t infix = path.rfind(kInfix);
  const std::string stem = path.substr(0, infix + kInfix.size()) + "damaged-" + path.substr(infix + kInfix.size());
  for (unsigned k = 0; k < 1000; ++k) {
    std::string target = k == 0 ? stem : fmt::format("{}.{}", stem, k);
    if (::link(path.c_str(), target.c_str()) == 0) {
      if (::unlink(path.c_str()) != 0) {
        const int error = errno;
        (void)::unlink(target.c_str());
        return make_error(errno_text(error));
      }
      return Result<std::string>(boost::system::in_place_value, std::move(target));
    }
    if (errno != EEXIST) return make_error(errno_text(errno));
  }
  return make_error("no free name to set it aside");
}

}  // namespace

std::uint32_t crc32c(std::string_view bytes) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(bytes.data(), bytes.size());
  return crc.checksum();
}

std::string journal_path(const std::string& base, unsigned index) { return fmt::format("{}{}{}", base, kInfix, index); }

Result<std::shared_ptr<Journal>> Journal::open(const std::string& base, std::uint64_t bytes) {
  const std::uint64_t segment = bytes / 2;
  if (segment < kSegmentHeaderBytes + kFrameHeaderBytes) return make_error("journal size too small");
  std::string first_error;  // the first index that could not be opened, and why
  for (unsigned index = 0; index < kMaxJournals; ++index) {
    std::string path = journal_path(base, index);
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      const int error = errno;
      if (first_error.empty()) first_error = fmt::format("journal '{}': {}", path, errno_text(error));
      // A directory that cannot be written fails every index the same way.
      if (error == ENOENT || error == EROFS || error == ENOSPC) return make_error(std::move(first_error));
      continue;
    }
    // Held by a live process, or left by a dead one with records a replay could not store yet.
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0 || has_valid_header(fd)) {
      ::close(fd);
      continue;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || (static_cast<std::uint64_t>(st.st_size) != segment * 2 &&
                                  ::ftruncate(fd, static_cast<off_t>(segment * 2)) != 0)) {
      const int error = errno;
      ::close(fd);
      return make_error(fmt::format("journal '{}': {}", path, errno_text(error)));
    }
    // Blocks allocated once: a write into the file never waits for the file system to
    // find space (and never fails for want of it).
    if (const int error = ::posix_fallocate(fd, 0, static_cast<off_t>(segment * 2)); error != 0) {
      ::close(fd);
      return make_error(fmt::format("journal '{}': preallocating: {}", path, errno_text(error)));
    }
    return std::shared_ptr<Journal>(new Journal(fd, std::move(path), segment));
  }
  return make_error(first_error.empty() ? fmt::format("all {} journal files of '{}' are in use", kMaxJournals, base)
                                         : fmt::format("no journal file of '{}' is free ({})", base, first_error));
}

Journal::Journal(int fd, std::string path, std::uint64_t segment_bytes)
    : fd_(fd),
      path_(std::move(path)),
      segment_bytes_(segment_bytes),
      key_prefix_(fmt::format("{:016x}", random_u64())),
      offset_(segment_bytes),  // the first write starts a lap in segment 0
      generation_(random_u64()) {}

Journal::~Journal() { ::close(fd_); }

std::uint64_t Journal::stamp(KeyedRecord& keyed) {
  const std::uint64_t seq = next_seq_++;
  keyed.key = fmt::format("{}-{:016x}", key_prefix_, seq);
  return seq;
}

bool Journal::write(std::span<const KeyedRecord> records, std::uint64_t first_seq) {
  if (records.empty()) return true;
  buffer_.assign(kSegmentHeaderBytes, '\0');  // room for a segment header, sent only when a lap starts
  std::uint64_t seq = first_seq;
  for (const KeyedRecord& keyed : records) {
    const std::size_t start = buffer_.size();
    buffer_.resize(start + kFrameHeaderBytes);
    encode_record(keyed, buffer_);
    store_at<std::uint32_t>(buffer_, start, static_cast<std::uint32_t>(buffer_.size() - start - kFrameHeaderBytes));
    store_at<std::uint64_t>(buffer_, start + 16, seq++);
  }
  const std::uint64_t last_seq = seq - 1;
  const std::uint64_t frames = buffer_.size() - kSegmentHeaderBytes;
  const bool new_lap = offset_ + frames > segment_bytes_;
  const unsigned segment = new_lap ? 1 - current_ : current_;
  if (new_lap) {
    // The other segment is written over only once everything in it is durable.
    if (stuck_.load(std::memory_order_acquire) || last_in_[segment] > durable_.load(std::memory_order_acquire) ||
        kSegmentHeaderBytes + frames > segment_bytes_) {
      return false;
    }
  }
  const std::uint64_t generation = new_lap ? generation_ + 1 : generation_;
  for (std::size_t at = kSegmentHeaderBytes; at < buffer_.size();) {
    const std::uint32_t length = load_at<std::uint32_t>(buffer_, at);
    store_at<std::uint64_t>(buffer_, at + 8, generation);
    store_at<std::uint32_t>(buffer_, at + 4,
                            crc32c(std::string_view(buffer_).substr(at + 8, kFrameHeaderBytes - 8 + length)));
    at += kFrameHeaderBytes + length;
  }
  std::string_view bytes(buffer_);
  std::uint64_t at = 0;
  if (new_lap) {
    encode_header(buffer_, generation, first_seq, segment_bytes_);
    at = segment * segment_bytes_;
  } else {
    bytes.remove_prefix(kSegmentHeaderBytes);
    at = segment * segment_bytes_ + offset_;
  }
  if (const int error = pwrite_all(fd_, bytes, at); error != 0) {
    write_errno_.store(error, std::memory_order_relaxed);
    failed_writes_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  write_errno_.store(0, std::memory_order_relaxed);
  if (new_lap) {
    current_ = segment;
    generation_ = generation;
    offset_ = kSegmentHeaderBytes;
  }
  offset_ += frames;
  last_in_[segment] = last_seq;
  written_.store(last_seq, std::memory_order_release);
  return true;
}

std::string Journal::off_reason() const {
  if (stuck_.load(std::memory_order_acquire)) {
    return fmt::format("journal '{}' holds a record the writer gave up (its backlog overflowed); it is replayed at "
                       "the next start, and the loop waits for commits until then", path_);
  }
  if (const int error = write_errno_.load(std::memory_order_relaxed); error != 0) {
    return fmt::format("journal '{}': the last write failed: {}", path_, errno_text(error));
  }
  return {};
}

void Journal::reset_if_durable() {
  if (stuck_.load(std::memory_order_acquire) ||
      written_.load(std::memory_order_acquire) > durable_.load(std::memory_order_acquire)) {
    return;  // replayed at the next open
  }
  (void)clear_journal(fd_);
}

Result<void> clear_journal(int fd) {
  const auto segment = segment_size(fd);
  if (!segment) return segment.error();
  const std::string zeros(Journal::kSegmentHeaderBytes, '\0');
  for (unsigned s = 0; s < 2; ++s) {
    if (const int error = pwrite_all(fd, zeros, s * *segment); error != 0) {
      return make_error(fmt::format("clearing the journal: {}", errno_text(error)));
    }
  }
  return {};
}

Result<std::vector<KeyedRecord>> read_journal(int fd, std::uint64_t* damaged_at) {
  const auto segment = segment_size(fd);
  if (!segment) return segment.error();
  struct Lap {
    std::uint64_t generation;
    std::vector<KeyedRecord> records;
  };
  std::vector<Lap> laps;
  for (unsigned s = 0; s < 2 && *segment >= Journal::kSegmentHeaderBytes; ++s) {
    // A cleared (or never written) segment costs one read of its header.
    auto head = pread_some(fd, s * *segment, Journal::kSegmentHeaderBytes);
    if (!head) return head.error();
    const auto header = decode_header(*head, *segment);
    if (!header) continue;
    auto bytes = pread_some(fd, s * *segment, *segment);
    if (!bytes) return bytes.error();
    const std::string_view view(*bytes);
    Lap lap{header->generation, {}};
    std::uint64_t previous = header->first_seq - 1;
    // Whether a whole frame of this lap, numbered above `after`, starts at `from`. The read
    // ends at the first frame that is not one: another lap's frame (stale bytes behind this
    // lap's end), one out of order (a write that failed part-way and was written over by
    // later, higher-numbered frames), or one torn or damaged.
    const auto valid_at = [&](std::size_t from, std::uint64_t after) {
      const std::uint32_t size = load_at<std::uint32_t>(view, from);
      return size <= view.size() - from - Journal::kFrameHeaderBytes &&
             load_at<std::uint64_t>(view, from + 8) == header->generation &&
             load_at<std::uint64_t>(view, from + 16) > after &&
             load_at<std::uint32_t>(view, from + 4) ==
                 crc32c(view.substr(from + 8, Journal::kFrameHeaderBytes - 8 + size));
    };
    for (std::size_t at = Journal::kSegmentHeaderBytes; at + Journal::kFrameHeaderBytes <= view.size();) {
      std::optional<KeyedRecord> keyed;
      if (valid_at(at, previous)) {
        keyed = decode_record(view.substr(at + Journal::kFrameHeaderBytes, load_at<std::uint32_t>(view, at)));
      }
      if (!keyed) {
        // A torn tail or the lap's end stops here; a whole frame of this lap further on
        // means damage in the middle, with answered calls behind it this read cannot give.
        for (std::size_t next = at + 1; damaged_at && next + Journal::kFrameHeaderBytes <= view.size(); ++next) {
          if (load_at<std::uint64_t>(view, next + 8) == header->generation && valid_at(next, previous)) {
            *damaged_at = s * *segment + at;
            break;
          }
        }
        break;
      }
      lap.records.push_back(std::move(*keyed));
      previous = load_at<std::uint64_t>(view, at + 16);
      at += Journal::kFrameHeaderBytes + load_at<std::uint32_t>(view, at);
    }
    laps.push_back(std::move(lap));
  }
  std::sort(laps.begin(), laps.end(), [](const Lap& a, const Lap& b) { return a.generation < b.generation; });
  std::vector<KeyedRecord> records;
  for (Lap& lap : laps) std::move(lap.records.begin(), lap.records.end(), std::back_inserter(records));
  return records;
}

ReplayReport replay_orphaned_journals(const std::string& base,
                                      const std::function<Result<void>(std::vector<KeyedRecord>)>& store) {
  namespace fs = std::filesystem;
  ReplayReport report;
  const fs::path ledger(base);
  const fs::path directory = ledger.has_parent_path() ? ledger.parent_path() : fs::path(".");
  const std::string prefix = ledger.filename().string() + std::string(kInfix);
  std::error_code error;
  std::vector<std::string> candidates;
  for (fs::directory_iterator it(directory, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.size() > prefix.size() && name.starts_with(prefix) &&
        std::all_of(name.begin() + static_cast<std::ptrdiff_t>(prefix.size()), name.end(),
                    [](char c) { return c >= '0' && c <= '9'; })) {
      candidates.push_back(it->path().string());
    }
  }
  std::sort(candidates.begin(), candidates.end());
  const auto note = [&](std::string text) {
    report.problem += report.problem.empty() ? text : "; " + text;
  };
  for (const std::string& path : candidates) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) continue;  // set aside by another replay since the listing
    if (fd < 0) {
      ++report.left;
      note(fmt::format("journal '{}' cannot be opened: {}", path, errno_text(errno)));
      continue;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ++report.busy;
      ::close(fd);
      continue;
    }
    if (!still_named(fd, path)) {
      // Another replay set this file aside (or cleared and a loop recreated the name)
      // between our open and our lock: what the path names now is not what we hold, and
      // setting it aside by name could move a live journal out of the replay pattern.
      ::close(fd);
      continue;
    }
    std::uint64_t damaged_at = 0;
    auto records = read_journal(fd, &damaged_at);
    Result<void> done;
    if (!records) {
      done = records.error();
    } else {
      const std::size_t count = records->size();
      if (count > 0) done = store(std::move(*records));
      if (done && damaged_at == 0) done = clear_journal(fd);
      if (done) {
        report.records += count;
        if (damaged_at == 0) {
          if (count > 0) ++report.journals;
        } else {
          ++report.damaged;
          // Out of the replay pattern, so the readable part is stored once (a later open with
          // another retention could otherwise bring back rows retention deleted) and the
          // index is free again; the file itself is kept for whoever looks at the damage.
          const auto kept = set_aside(path);
          note(fmt::format("journal '{}' is damaged at byte {}: {} records were stored, the calls after it cannot "
                           "be read; {}",
                           path, damaged_at, count,
                           kept ? fmt::format("the file is kept as '{}' (remove it once looked at)", *kept)
                                : fmt::format("the file could not be set aside ({}), so it is replayed again at the "
                                              "next open (its records are not stored twice while they are kept)",
                                              kept.error().message)));
        }
      }
    }
    if (!done) {
      ++report.left;
      note(fmt::format("journal '{}' left for a later try: {}", path, done.error().message));
    }
    ::close(fd);
  }
  return report;
}

}  // namespace turnout::ledger
