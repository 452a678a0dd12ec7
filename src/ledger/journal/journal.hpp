#pragma once
// The journal hand-off (docs/ARCHITECTURE.md, "The journal hand-off"): one event loop's
// records, framed, written with one pwrite(2) per turn of the loop into a preallocated
// file of the loop's own next to the SQLite ledger, before the calls are answered. The
// bytes are then in the page cache, which a SIGKILL of the gateway keeps (as it keeps
// SQLite's WAL with synchronous=NORMAL; a power loss is covered by neither), so the loop
// resumes its calls at once instead of waiting for the writer's commit. At the next open
// of the ledger, a journal no live process holds is replayed through the normal write
// path; the records carry their ledger keys, so a record already committed is skipped.
//
// A file `<ledger>.turnout-handoff-<n>` is two segments used in turn. A segment starts with
// a header (magic, version, the lap's generation, its first sequence number, the segment
// size, CRC32C), then frames: payload length, CRC32C, generation, sequence number, the
// record (record_codec.hpp). A lap's generation is random at open and counts up per lap,
// so frames a previous lap or process left behind the current lap's end never match; the
// sequence numbers rise within a lap. Reading stops at the first frame that does not
// check (a torn tail: those calls were never answered). A segment is started again only
// once the writer reported every record in it durable (publish_durable).
//
// Locking: the file is held with an exclusive flock(2) while open, so several processes on
// one ledger never share a journal and a replay never reads one a live process writes.
#include "common/result.hpp"
#include "ledger/ledger.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace turnout::ledger {

class Journal {
 public:
  static constexpr std::size_t kSegmentHeaderBytes = 40;
  static constexpr std::size_t kFrameHeaderBytes = 24;
  // Journal indexes tried per ledger (several loops, several processes).
  static constexpr unsigned kMaxJournals = 256;

  // Opens for use the first journal of ledger file `base` that this process can open and
  // lock and that holds nothing left to replay, creating it, sized to `bytes` and
  // preallocated; an index it cannot open (another user's file) is passed over.
  static Result<std::shared_ptr<Journal>> open(const std::string& base, std::uint64_t bytes);
  ~Journal();  // closes the file, which releases its lock
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  const std::string& path() const { return path_; }

  // Loop side (the one thread that owns the journal).
  // Gives `keyed` the journal's next sequence number and the ledger key made from it;
  // returns the number.
  std::uint64_t stamp(KeyedRecord& keyed);
  // Writes `records`, stamped with the consecutive numbers from `first_seq` (above every
  // number written before), as frames with one pwrite(2). False when they do not fit (the
  // other segment still holds records not durable, or the writer fell behind for good) or
  // the write failed: then the records are not to be relied on from this journal.
  bool write(std::span<const KeyedRecord> records, std::uint64_t first_seq);

  // Writer side: every record stamped up to `seq` is durable (committed or spooled).
  void publish_durable(std::uint64_t seq) { durable_.store(seq, std::memory_order_release); }
  // A record of this journal was given up (the writer's backlog overflowed): its space is
  // never reused, so the journal fills and the loop goes back to waiting for commits.
  void mark_stuck() { stuck_.store(true, std::memory_order_release); }

  // Why the loop is back to waiting for commits ("" while the journal takes its turns):
  // stuck (a record given up), or a write that failed. Any thread.
  std::string off_reason() const;
  // Writes that failed (pwrite(2) errors, not a journal that was full), and the errno of
  // the last write (0 after one that worked). Any thread.
  std::uint64_t failed_writes() const { return failed_writes_.load(std::memory_order_relaxed); }
  int write_errno() const { return write_errno_.load(std::memory_order_relaxed); }

  // Once the writer has stopped (the ledger closed, the loop stopped): when every record
  // written is durable, the file is marked empty so the next open replays nothing.
  void reset_if_durable();

 private:
  Journal(int fd, std::string path, std::uint64_t segment_bytes);

  const int fd_;
  const std::string path_;
  const std::uint64_t segment_bytes_;
  const std::string key_prefix_;
  // The loop's.
  unsigned current_ = 1;         // the segment being written
  std::uint64_t offset_;         // where in it the next frame goes
  std::uint64_t generation_;     // the current lap's
  std::uint64_t next_seq_ = 1;
  std::uint64_t last_in_[2] = {0, 0};  // the highest sequence number each segment holds
  std::string buffer_;
  // Shared with the writer (and close).
  std::atomic<std::uint64_t> durable_{0};
  std::atomic<std::uint64_t> written_{0};
  std::atomic<bool> stuck_{false};
  std::atomic<int> write_errno_{0};  // the last failed pwrite's, 0 after one that worked
  std::atomic<std::uint64_t> failed_writes_{0};
};

// Journal `index` of ledger file `base`: "<base>.turnout-handoff-<index>".
std::string journal_path(const std::string& base, unsigned index);

// The records a journal file (open as `fd`) holds in valid frames, older lap first. A
// read stops at the first frame that does not check; when a valid frame of the same lap
// follows it (damage in the middle, not a torn tail), `damaged_at` (if given) is set to
// the file offset of the bad frame, else left as it is.
Result<std::vector<KeyedRecord>> read_journal(int fd, std::uint64_t* damaged_at = nullptr);

// Marks the journal open as `fd` empty (both segment headers zeroed).
Result<void> clear_journal(int fd);

struct ReplayReport {
  std::size_t journals = 0;  // replayed and cleared, among those that held records
  std::size_t records = 0;   // records given to `store`
  std::size_t busy = 0;      // held by a live process, left alone
  // Left as they are because they could not be opened, read or stored: worth another try.
  std::size_t left = 0;
  // Damaged in the middle: the records before the damage were stored, and the file is kept
  // (not cleared), since calls answered from the frames behind the damage cannot be read,
  // but renamed "<base>.turnout-handoff-damaged-<n>", out of the replay's way.
  std::size_t damaged = 0;
  std::string problem;  // each journal left or damaged, and why ("" for none)
};

// Replays each journal of ledger file `base` that no live process holds: `store` is given
// its records; a journal whose records it took is cleared, one it failed (or that could
// not be opened or read) is left as it is for a later try, one damaged in the middle is
// stored up to the damage and set aside (renamed; replayed once).
ReplayReport replay_orphaned_journals(const std::string& base,
                                      const std::function<Result<void>(std::vector<KeyedRecord>)>& store);

// CRC32C (Castagnoli) of `bytes`, as the frames use it.
std::uint32_t crc32c(std::string_view bytes);

}  // namespace turnout::ledger
