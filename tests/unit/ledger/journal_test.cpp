// The journal hand-off (issue 16): a loop's records written, framed, to a journal file of
// its own before their calls are answered, and replayed at the next open of the ledger when
// a killed process left them. Frames round-trip every field; a torn or damaged tail ends
// the replay; frames a previous lap or process left are never replayed; a segment is
// written over only once its records are durable; replay stores each record once (its
// ledger key travels in the frame and is the key the writer stores); a journal a live
// process holds is not replayed.
#include "ledger/journal/journal.hpp"
#include "ledger/journal/record_codec.hpp"
#include "ledger/ledger.hpp"
#include "ledger/queued_ledger.hpp"
#include "ledger_reference.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

namespace {

using namespace turnout;
using namespace turnout::ledger;
using namespace turnout::ledger::test;
namespace fs = std::filesystem;

CallRecord full_record(std::string id) {
  CallRecord r = sample_record(std::move(id), 1'700'000'000.25, "gpt-4.1-mini");
  r.client_key_id = "key-7";
  r.endpoint = std::string(kResponsesEndpoint);
  r.count_estimated = true;
  r.count_partial = true;
  r.usage = {120, 30, 64};
  r.ttft_ms = 3.75;
  r.status = 499;
  r.error_type = "client_closed";
  r.attempts = 3;
  r.stream = true;
  r.hold_id = "hold-1";
  return r;
}

// A record of fixed size (ids of one length), so two journals' frames line up.
CallRecord sized_record(int n) {
  std::string id = std::to_string(1'000'000 + n);  // seven digits for every n used here
  return sample_record("call-" + id, 1'700'000'000.0 + n, "gpt-4.1");
}

std::vector<KeyedRecord> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path;
  auto records = read_journal(fd);
  ::close(fd);
  EXPECT_TRUE(records) << records.error().message;
  return records ? std::move(*records) : std::vector<KeyedRecord>{};
}

// Stamps and writes `records` as one turn; returns their keyed form (empty when refused).
std::vector<KeyedRecord> write_turn(Journal& journal, const std::vector<CallRecord>& records, bool* written = nullptr) {
  std::vector<KeyedRecord> keyed;
  std::uint64_t first = 0;
  for (const CallRecord& r : records) {
    keyed.push_back(KeyedRecord{{}, r});
    const std::uint64_t seq = journal.stamp(keyed.back());
    if (first == 0) first = seq;
  }
  const bool ok = journal.write(keyed, first);
  if (written) *written = ok;
  return keyed;
}

std::vector<std::string> keys_of(const std::vector<KeyedRecord>& records) {
  std::vector<std::string> keys;
  for (const auto& r : records) keys.push_back(r.key);
  return keys;
}

void flip_byte(const std::string& path, std::uint64_t at) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  char byte = 0;
  ASSERT_EQ(::pread(fd, &byte, 1, static_cast<off_t>(at)), 1);
  byte = static_cast<char>(byte ^ 0x5a);
  ASSERT_EQ(::pwrite(fd, &byte, 1, static_cast<off_t>(at)), 1);
  ::close(fd);
}

std::shared_ptr<Journal> open_journal_or_die(const std::string& base, std::uint64_t bytes = 1 << 16) {
  auto journal = Journal::open(base, bytes);
  EXPECT_TRUE(journal) << journal.error().message;
  return journal ? *journal : nullptr;
}

TEST(JournalCodec, Crc32cIsCastagnoli) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the published check value
}

TEST(JournalCodec, EveryFieldRoundTrips) {
  for (const CallRecord& record : {full_record("full"), CallRecord{}}) {
    KeyedRecord keyed{"prefix-0000000000000001", record};
    std::string payload;
    encode_record(keyed, payload);
    const auto back = decode_record(payload);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->key, keyed.key);
    expect_same_record(record, back->record);
    EXPECT_EQ(back->record.hold_id, record.hold_id);
    // Cut short anywhere, or with bytes left over, it is not a record.
    for (std::size_t cut = 0; cut < payload.size(); cut += 7) EXPECT_FALSE(decode_record(payload.substr(0, cut)));
    EXPECT_FALSE(decode_record(payload + "x"));
  }
}

TEST(Journal, FramesRoundTripThroughTheFile) {
  TempDir dir;
  const std::string base = (dir.path() / "ledger.db").string();
  auto journal = open_journal_or_die(base);
  ASSERT_TRUE(journal);
  EXPECT_EQ(journal->path(), base + ".turnout-handoff-0");
  auto first = write_turn(*journal, {full_record("a"), sized_record(1)});
  auto second = write_turn(*journal, {sized_record(2)});
  const auto read = read_file(journal->path());
  ASSERT_EQ(read.size(), 3u);
  EXPECT_EQ(read[0].key, first[0].key);
  expect_same_record(first[0].record, read[0].record);
  EXPECT_EQ(read[1].key, first[1].key);
  EXPECT_EQ(read[2].key, second[0].key);
  expect_same_record(second[0].record, read[2].record);
}

TEST(Journal, TornTailEndsTheReplay) {
  TempDir dir;
  const std::string base = (dir.path() / "ledger.db").string();
  auto journal = open_journal_or_die(base);
  ASSERT_TRUE(journal);
  write_turn(*journal, {sized_record(1)});
  write_turn(*journal, {sized_record(2)});
  ASSERT_EQ(read_file(journal->path()).size(), 2u);
  // The second frame cut off part-way: its last bytes never reached the file.
  const auto frames = read_file(journal->path());
  std::uint64_t second_frame_end = Journal::kSegmentHeaderBytes;
  for (const KeyedRecord& keyed : frames) {
    std::string payload;
    encode_record(keyed, payload);
    second_frame_end += Journal::kFrameHeaderBytes + payload.size();
  }
  const int fd = ::open(journal->path().c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const std::string zeros(16, '\0');
  ASSERT_EQ(::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(second_frame_end - zeros.size())), 16);
  ::close(fd);
  const auto read = read_file(journal->path());
  ASSERT_EQ(read.size(), 1u);
  EXPECT_EQ(read[0].record.id, "call-1000001");
}

TEST(Journal, BadChecksumEndsTheReplay) {
  TempDir dir;
  const std::string base = (dir.path() / "ledger.db").string();
  auto journal = open_journal_or_die(base);
  ASSERT_TRUE(journal);
  write_turn(*journal, {sized_record(1), sized_record(2), sized_record(3)});
  const auto frames = read_file(journal->path());
  ASSERT_EQ(frames.size(), 3u);
  std::string payload;
  encode_record(frames[0], payload);
  const std::uint64_t frame = Journal::kFrameHeaderBytes + payload.size();
  // One byte of the second record's model name.
  flip_byte(journal->path(), Journal::kSegmentHeaderBytes + frame + Journal::kFrameHeaderBytes + 60);
  const auto read = read_file(journal->path());
  ASSERT_EQ(read.size(), 1u);
  EXPECT_EQ(read[0].record.id, "call-1000001");
}

TEST(Journal, AnotherProcessesStaleFramesAreNotReplayed) {
  TempDir dir;
  const std::string base = (dir.path() / "ledger.db").string();
  std::string path;
  {
    // A process wrote five records, its writer committed them all, it closed cleanly.
    auto earlier = open_journal_or_die(base);
    ASSERT_TRUE(earlier);
    path = earlier->path();
    std::vector<CallRecord> five;
    for (int i = 0; i < 5; ++i) five.push_back(sized_record(i));
    auto keyed = write_turn(*earlier, five);
    earlier->publish_durable(5);
    earlier->reset_if_durable();
    EXPECT_TRUE(read_file(path).empty());
  }
  // The next one takes the same file, writes two records of the same size (its frames line
  // up with the earlier ones, its sequence numbers start at 1 again) and is killed.
  auto later = open_journal_or_die(base);
  ASSERT_TRUE(later);
  ASSERT_EQ(later->path(), path);
  auto keyed = write_turn(*later, {sized_record(100), sized_record(101)});
  const auto read = read_file(path);
  EXPECT_EQ(keys_of(read), keys_of(keyed)) << "the earlier process's third to fifth frames follow on disk";
}

TEST(Journal, ASegmentIsReusedOnlyOnceItsRecordsAreDurable) {
  TempDir dir;
  const std::string base = (dir.path() / "ledger.db").string();
  std::string payload;
  encode_record(KeyedRecord{std::string(33, 'k'), sized_record(0)}, payload);
  const std::uint64_t frame = Journal::kFrameHeaderBytes + payload.size();
  const std::uint64_t per_segment = 4;
  auto journal = open_journal_or_die(base, 2 * (Journal::kSegmentHeaderBytes + per_segment * frame));
  ASSERT_TRUE(journal);
  std::vector<std::string> written;
  int n = 0;
  bool ok = true;
  // Two segments' worth fit without anything durable; the next record does not.
  for (std::uint64_t i = 0; i < 2 * per_segment; ++i) {
    auto keyed = write_turn(*journal, {sized_record(n++)}, &ok);
    ASSERT_TRUE(ok) << i;
    written.push_back(keyed[0].key);
  }
  write_turn(*journal, {sized_record(n++)}, &ok);
  EXPECT_FALSE(ok) << "segment 0 still holds records not durable";
  EXPECT_EQ(keys_of(read_file(journal->path())), written);
  // The writer reports the first three durable: segment 0's fourth is not yet.
  journal->publish_durable(3);
  write_turn(*journal, {sized_record(n++)}, &ok);
  EXPECT_FALSE(ok);
  journal->publish_durable(4);
  auto keyed = write_turn(*journal, {sized_record(n++)}, &ok);
  ASSERT_TRUE(ok);
  // Replay: segment 1's lap, then segment 0's new lap; none of segment 0's old frames
  // (all durable), although three of them still follow the new frame on disk.
  std::vector<std::string> expected(written.begin() + per_segment, written.end());
  expected.push_back(keyed[0].key);
  EXPECT_EQ(keys_of(read_file(journal->path())), expected);
  // A writer that gave up a record (backlog overflow) stops reuse for good.
  journal->publish_durable(1000);
  journal->mark_stuck();
  for (std::uint64_t i = 0; i < per_segment; ++i) write_turn(*journal, {sized_record(n++)}, &ok);
  EXPECT_FALSE(ok);
}

// The ledger side: a SQLite file ledger with its journals.
struct JournalLedger {
  TempDir dir;
  std::string db = (dir.path() / "ledger.db").string();
  std::string url = "sqlite:" + db;
};

std::uint64_t stored_calls(const std::string& db) {
  return static_cast<std::uint64_t>(query_int(db, "SELECT count(*) FROM calls"));
}

// Copies a journal file aside (as a SIGKILL would leave it) and back.
void copy_file(const std::string& from, const std::string& to) {
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}

TEST(JournalReplay, AKilledProcessesJournalIsReplayedOnceAtOpen) {
  JournalLedger setup;
  std::string journal_path, saved = setup.db + ".saved";
  std::vector<KeyedRecord> keyed;
  {
    auto ledger = open_or_die(setup.url);
    ASSERT_TRUE(ledger);
    auto journal = ledger->open_journal();
    ASSERT_TRUE(journal) << "a file-backed SQLite ledger keeps journals";
    journal_path = journal->path();
    // Answered from the journal; the process is killed before the writer got them.
    keyed = write_turn(*journal, {sized_record(1), sized_record(2), sized_record(3)});
    copy_file(journal_path, saved);
    ledger->close();
  }
  EXPECT_EQ(stored_calls(setup.db), 0);
  copy_file(saved, journal_path);
  {
    auto ledger = open_or_die(setup.url);
    ASSERT_TRUE(ledger);
    EXPECT_EQ(stats_or_die(*ledger).total_calls, 3u) << "replayed before the ledger serves";
  }
  EXPECT_EQ(stored_calls(setup.db), 3);
  EXPECT_EQ(query_int(setup.db, "SELECT count(*) FROM calls WHERE record_key = '" + keyed[1].key + "'"), 1);
  EXPECT_TRUE(read_file(journal_path).empty()) << "cleared once stored";
  // The same journal again (a crash between the replay's commit and the clear): no-op.
  copy_file(saved, journal_path);
  { auto ledger = open_or_die(setup.url); }
  EXPECT_EQ(stored_calls(setup.db), 3);
}

TEST(JournalReplay, ARecordCommittedBeforeTheKillIsNotStoredAgain) {
  JournalLedger setup;
  std::string journal_path, saved = setup.db + ".saved";
  {
    auto ledger = open_or_die(setup.url);
    ASSERT_TRUE(ledger);
    auto journal = ledger->open_journal();
    ASSERT_TRUE(journal);
    journal_path = journal->path();
    auto keyed = write_turn(*journal, {sized_record(1), sized_record(2)});
    std::promise<Result<void>> durable;
    ledger->append_keyed(keyed, journal, 2, [&](Result<void> r) { durable.set_value(std::move(r)); });
    ASSERT_TRUE(durable.get_future().get());
    // The writer stores them under the journal's keys (the replay's no-op depends on it).
    EXPECT_EQ(query_int(setup.db, "SELECT count(*) FROM calls WHERE record_key IN ('" + keyed[0].key + "', '" +
                                              keyed[1].key + "')"),
              2);
    copy_file(journal_path, saved);  // killed now: the frames are still in the file
  }
  EXPECT_TRUE(read_file(journal_path).empty()) << "a clean close leaves nothing to replay";
  copy_file(saved, journal_path);
  {
    auto ledger = open_or_die(setup.url);
    ASSERT_TRUE(ledger);
    EXPECT_EQ(stats_or_die(*ledger).total_calls, 2u);
  }
  EXPECT_EQ(stored_calls(setup.db), 2);
}

TEST(JournalReplay, AJournalALiveProcessHoldsIsLeftAlone) {
  JournalLedger setup;
  auto live = open_journal_or_die(setup.db);
  ASSERT_TRUE(live);
  write_turn(*live, {sized_record(1)});
  std::size_t stored = 0;
  const ReplayReport report = replay_orphaned_journals(setup.db, [&](std::vector<KeyedRecord> records) -> Result<void> {
    stored += records.size();
    return {};
  });
  EXPECT_EQ(report.busy, 1u);
  EXPECT_EQ(report.journals, 0u);
  EXPECT_EQ(stored, 0u);
  {
    auto ledger = open_or_die(setup.url);
    ASSERT_TRUE(ledger);
    EXPECT_EQ(stats_or_die(*ledger).total_calls, 0u);
    // And a second journal for this ledger is another file.
    auto mine = ledger->open_journal();
    ASSERT_TRUE(mine);
    EXPECT_NE(mine->path(), live->path());
  }
  EXPECT_EQ(read_file(live->path()).size(), 1u) << "still there for its owner";
}

TEST(JournalReplay, AJournalThatCannotBeStoredIsKeptForTheNextOpen) {
  JournalLedger setup;
  std::string path;
  {
    auto journal = open_journal_or_die(setup.db);
    ASSERT_TRUE(journal);
    path = journal->path();
    write_turn(*journal, {sized_record(1)});
  }  // killed: the lock goes with the process
  const ReplayReport refused = replay_orphaned_journals(
      setup.db, [](std::vector<KeyedRecord>) -> Result<void> { return make_error("database is locked"); });
  EXPECT_EQ(refused.journals, 0u);
  EXPECT_NE(refused.problem.find("database is locked"), std::string::npos) << refused.problem;
  // Not taken for use meanwhile: a new journal is another file.
  auto other = open_journal_or_die(setup.db);
  ASSERT_TRUE(other);
  EXPECT_NE(other->path(), path);
  other.reset();
  std::size_t stored = 0;
  const ReplayReport replayed = replay_orphaned_journals(setup.db, [&](std::vector<KeyedRecord> records) -> Result<void> {
    stored += records.size();
    return {};
  });
  EXPECT_EQ(replayed.journals, 1u) << "the cleared one held nothing";
  EXPECT_EQ(stored, 1u);
}

TEST(JournalReplay, OffForMemoryLedgersAndWhenSwitchedOff) {
  auto memory = open_or_die("sqlite::memory:");
  ASSERT_TRUE(memory);
  EXPECT_FALSE(memory->open_journal());
  JournalLedger setup;
  LedgerOptions off;
  off.journal = false;
  auto ledger = open_or_die(setup.url, off);
  ASSERT_TRUE(ledger);
  EXPECT_FALSE(ledger->open_journal());
}

TEST(JournalReplay, DamageInTheMiddleIsReportedAndTheFileKept) {
  JournalLedger setup;
  std::string path;
  std::vector<KeyedRecord> keyed;
  {
    auto journal = open_journal_or_die(setup.db);
    ASSERT_TRUE(journal);
    path = journal->path();
    keyed = write_turn(*journal, {sized_record(1), sized_record(2), sized_record(3)});
  }  // killed
  std::string payload;
  encode_record(keyed[0], payload);
  const std::uint64_t frame = Journal::kFrameHeaderBytes + payload.size();
  flip_byte(path, Journal::kSegmentHeaderBytes + frame + Journal::kFrameHeaderBytes + 60);  // the second record
  std::vector<std::string> stored;
  const ReplayReport report = replay_orphaned_journals(setup.db, [&](std::vector<KeyedRecord> records) -> Result<void> {
    for (const auto& r : records) stored.push_back(r.key);
    return {};
  });
  EXPECT_EQ(stored, std::vector<std::string>{keyed[0].key}) << "what is readable is stored";
  EXPECT_EQ(report.damaged, 1u);
  EXPECT_EQ(report.journals, 0u);
  EXPECT_NE(report.problem.find("damaged at byte " + std::to_string(Journal::kSegmentHeaderBytes + frame)),
            std::string::npos)
      << report.problem;
  // Not cleared: the third call, answered, is still in the file for whoever looks; but set
  // aside, out of the replay pattern, with the same mode.
  const std::string aside = setup.db + ".turnout-handoff-damaged-0";
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(read_file(aside).size(), 1u);
  EXPECT_EQ(fs::status(aside).permissions(), fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_NE(report.problem.find("1 records were stored"), std::string::npos) << report.problem;
  EXPECT_NE(report.problem.find("kept as '" + aside + "'"), std::string::npos) << report.problem;
  // The next open (serve again, or `turnout stats`) finds nothing to replay: stored once.
  const ReplayReport again = replay_orphaned_journals(setup.db, [&](std::vector<KeyedRecord> records) -> Result<void> {
    for (const auto& r : records) stored.push_back(r.key);
    return {};
  });
  EXPECT_EQ(stored.size(), 1u);
  EXPECT_EQ(again.damaged, 0u);
  EXPECT_EQ(again.journals, 0u);
  EXPECT_EQ(again.problem, "");
  // Damaged again at the same index: the name already taken gets a suffix.
  {
    auto journal = open_journal_or_die(setup.db);
    ASSERT_TRUE(journal);
    EXPECT_EQ(journal->path(), path) << "the index is free again";
    write_turn(*journal, {sized_record(1), sized_record(2), sized_record(3)});
  }
  flip_byte(path, Journal::kSegmentHeaderBytes + frame + Journal::kFrameHeaderBytes + 60);
  EXPECT_EQ(replay_orphaned_journals(setup.db, [](std::vector<KeyedRecord>) -> Result<void> { return {}; }).damaged,
            1u);
  EXPECT_EQ(read_file(aside + ".1").size(), 1u);
  EXPECT_EQ(read_file(aside).size(), 1u);
  // A torn tail (the last frame cut) is not damage: stored and cleared.
  JournalLedger torn;
  {
    auto journal = open_journal_or_die(torn.db);
    ASSERT_TRUE(journal);
    path = journal->path();
    write_turn(*journal, {sized_record(1), sized_record(2)});
  }
  flip_byte(path, Journal::kSegmentHeaderBytes + frame + Journal::kFrameHeaderBytes + 60);
  const ReplayReport tail_report =
      replay_orphaned_journals(torn.db, [](std::vector<KeyedRecord>) -> Result<void> { return {}; });
  EXPECT_EQ(tail_report.damaged, 0u) << tail_report.problem;
  EXPECT_EQ(tail_report.journals, 1u);
  EXPECT_TRUE(read_file(path).empty());
}

// A backend the test steers: writes refused while `fail`, held while `gated`; each record
// stored is logged, and `on_write` runs on the writer thread after each stored batch.
struct Control {
  std::mutex mutex;
  std::condition_variable changed;
  bool fail = false;
  bool gated = false;
  std::size_t tries = 0;  // write_batch calls, refused ones included
  std::vector<std::string> ids;
  std::function<void()> on_write;
};

class ControlledBackend final : public StubBackend {
 public:
  explicit ControlledBackend(std::shared_ptr<Control> control) : control_(std::move(control)) {}
  Result<void> write_batch(std::span<const KeyedRecord> records) override {
    std::function<void()> after;
    {
      std::unique_lock lock(control_->mutex);
      control_->changed.wait(lock, [&] { return !control_->gated; });
      ++control_->tries;
      if (control_->fail) return make_error("database is locked");
      for (const KeyedRecord& keyed : records) control_->ids.push_back(keyed.record.id);
      after = control_->on_write;
    }
    control_->changed.notify_all();
    if (after) after();
    return {};
  }
  bool folds_rollups_later() const override { return true; }

 private:
  std::shared_ptr<Control> control_;
};

// Waits (bounded) until `done` holds under the control's lock.
bool wait_for(Control& control, const std::function<bool()>& done) {
  std::unique_lock lock(control.mutex);
  return control.changed.wait_for(lock, std::chrono::seconds(20), done);
}

std::unique_ptr<QueuedLedger> open_controlled(const std::shared_ptr<Control>& control, const LedgerOptions& options,
                                              const std::string& journal_base = {}) {
  auto opened = QueuedLedger::open(std::make_unique<ControlledBackend>(control), options, journal_base);
  EXPECT_TRUE(opened) << opened.error().message;
  return opened ? std::move(*opened) : nullptr;
}

Result<void> appended(Ledger& ledger, std::vector<KeyedRecord> keyed, const std::shared_ptr<Journal>& journal) {
  std::promise<Result<void>> outcome;
  const std::uint64_t last = std::stoull(keyed.back().key.substr(keyed.back().key.find('-') + 1), nullptr, 16);
  ledger.append_keyed(std::move(keyed), journal, last, [&](Result<void> r) { outcome.set_value(std::move(r)); });
  return outcome.get_future().get();
}

// The start-up line counts the journals that held records: a clean stop leaves each loop's
// file cleared, and the next start has nothing to say about them.
TEST(JournalReplay, ClearedJournalsAreNotCountedAsReplayed) {
  JournalLedger setup;
  {
    auto ledger = open_or_die(setup.url);
    ASSERT_TRUE(ledger);
    auto first = ledger->open_journal();
    auto second = ledger->open_journal();
    ASSERT_TRUE(first && second);
    std::vector<KeyedRecord> keyed = write_turn(*first, {sized_record(1)});
    ASSERT_TRUE(appended(*ledger, std::move(keyed), first));
    ledger->close();  // a clean stop: both files cleared
  }
  const ReplayReport report =
      replay_orphaned_journals(setup.db, [](std::vector<KeyedRecord>) -> Result<void> { return {}; });
  EXPECT_EQ(report.records, 0u);
  EXPECT_EQ(report.journals, 0u);
  EXPECT_EQ(report.problem, "");
}

TEST(JournalReplay, AJournalTheOpenCouldNotStoreIsReportedAndReplayedByTheWriter) {
  TempDir dir;
  const std::string base = (dir.path() / "ledger.db").string();
  std::string path;
  {
    auto journal = open_journal_or_die(base);
    ASSERT_TRUE(journal);
    path = journal->path();
    write_turn(*journal, {sized_record(1), sized_record(2)});
  }  // killed
  auto control = std::make_shared<Control>();
  control->fail = true;  // the database is locked at the start
  LedgerOptions options;
  options.retry_interval = std::chrono::milliseconds(20);
  auto ledger = open_controlled(control, options, base);
  ASSERT_TRUE(ledger);
  const auto notes = ledger->open_notes();
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("left for a later try: database is locked"), std::string::npos) << notes[0];
  EXPECT_TRUE(ledger->health().healthy);
  EXPECT_NE(ledger->health().degraded.find("ledger journals not replayed"), std::string::npos)
      << ledger->health().degraded;
  {
    std::lock_guard lock(control->mutex);
    control->fail = false;
  }
  EXPECT_TRUE(wait_for(*control, [&] { return control->ids.size() == 2; })) << "replayed while the gateway runs";
  for (int i = 0; i < 1000 && !ledger->health().degraded.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(ledger->health().degraded, "");
  EXPECT_TRUE(read_file(path).empty()) << "cleared once stored";
}

// A journal the database keeps refusing is tried again less and less often (doubling up to
// a minute), not every retry_interval for the whole run.
TEST(JournalReplay, TheWritersReplayRetryBacksOff) {
  TempDir dir;
  const std::string base = (dir.path() / "ledger.db").string();
  {
    auto journal = open_journal_or_die(base);
    ASSERT_TRUE(journal);
    write_turn(*journal, {sized_record(1)});
  }  // killed
  auto control = std::make_shared<Control>();
  control->fail = true;  // for good
  LedgerOptions options;
  options.retry_interval = std::chrono::milliseconds(20);
  auto ledger = open_controlled(control, options, base);
  ASSERT_TRUE(ledger);
  // Every 20 ms that is 75 tries in 1.5 s; doubling from 20 ms, about 7 (open included).
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  std::size_t tries = 0;
  {
    std::lock_guard lock(control->mutex);
    tries = control->tries;
  }
  EXPECT_GE(tries, 2u) << "still tried while the gateway runs";
  EXPECT_LE(tries, 20u);
  ledger->close();
}

// A fold request is answered only once the writer has stored every record queued before
// it (a call answered from its journal is queued, not committed, before its response).
TEST(QueuedJournal, AFoldWaitsForEveryRecordQueuedBeforeIt) {
  auto control = std::make_shared<Control>();
  control->gated = true;
  LedgerOptions options;
  options.max_batch = 1;  // one record per round: the request is taken with the first
  auto ledger = open_controlled(control, options);
  ASSERT_TRUE(ledger);
  for (int i = 1; i <= 3; ++i) ledger->append(sized_record(i), nullptr);
  std::promise<std::size_t> stored_at_answer;
  ledger->request_fold([&](const FoldOutcome&) {
    std::lock_guard lock(control->mutex);
    stored_at_answer.set_value(control->ids.size());
  });
  {
    std::lock_guard lock(control->mutex);
    control->gated = false;
  }
  control->changed.notify_all();
  EXPECT_EQ(stored_at_answer.get_future().get(), 3u) << "answered before a record queued ahead of it was stored";
  ledger->close();
}

// ... and not later than that: records queued after it (more every round than a round
// takes) do not put it off.
TEST(QueuedJournal, AFoldIsNotPutOffBySustainedAppends) {
  auto control = std::make_shared<Control>();
  control->gated = true;
  LedgerOptions options;
  options.max_batch = 1;
  auto ledger = open_controlled(control, options);
  ASSERT_TRUE(ledger);
  for (int i = 1; i <= 3; ++i) ledger->append(sized_record(i), nullptr);
  std::promise<std::size_t> stored_at_answer;
  ledger->request_fold([&](const FoldOutcome& outcome) {
    EXPECT_TRUE(outcome.complete) << outcome.problem;
    std::lock_guard lock(control->mutex);
    stored_at_answer.set_value(control->ids.size());
  });
  // Each stored record queues two more, up to 400: the queue never empties meanwhile.
  std::atomic<int> more{0};
  Ledger* raw = ledger.get();
  {
    std::lock_guard lock(control->mutex);
    control->on_write = [&more, raw] {
      for (int i = 0; i < 2; ++i) {
        if (more.fetch_add(1) < 400) raw->append(sized_record(100 + more.load()), nullptr);
      }
    };
    control->gated = false;
  }
  control->changed.notify_all();
  const std::size_t stored = stored_at_answer.get_future().get();
  EXPECT_GE(stored, 3u);
  EXPECT_LT(stored, 20u) << "waited for records queued after it";
  ledger->close();
}

// The writer side of segment reuse: a segment is written over only after the round that
// made its records durable committed.
TEST(QueuedJournal, ASegmentIsReusedOnlyAfterTheCommit) {
  TempDir dir;
  const std::string base = (dir.path() / "ledger.db").string();
  std::string payload;
  encode_record(KeyedRecord{"0123456789abcdef-0000000000000001", sized_record(1)}, payload);
  auto control = std::make_shared<Control>();
  control->fail = true;
  LedgerOptions options;
  options.retry_interval = std::chrono::milliseconds(20);
  // One frame per segment.
  options.journal_bytes = 2 * (Journal::kSegmentHeaderBytes + Journal::kFrameHeaderBytes + payload.size());
  auto ledger = open_controlled(control, options, base);
  ASSERT_TRUE(ledger);
  auto journal = ledger->open_journal();
  ASSERT_TRUE(journal);
  bool written = false;
  auto first = write_turn(*journal, {sized_record(1)}, &written);
  ASSERT_TRUE(written);
  EXPECT_FALSE(appended(*ledger, first, journal)) << "the database refused the round";
  auto second = write_turn(*journal, {sized_record(2)}, &written);
  ASSERT_TRUE(written) << "the other segment was never used";
  EXPECT_FALSE(appended(*ledger, second, journal));
  write_turn(*journal, {sized_record(3)}, &written);
  EXPECT_FALSE(written) << "segment 0 holds a record that is not durable";
  {
    std::lock_guard lock(control->mutex);
    control->fail = false;
  }
  EXPECT_TRUE(wait_for(*control, [&] { return control->ids.size() == 2; }));
  bool reused = false;
  for (int i = 0; i < 1000 && !reused; ++i) {
    write_turn(*journal, {sized_record(4)}, &reused);
    if (!reused) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(reused) << "written over once the commit published it durable";
  ledger->close();
}

TEST(QueuedJournal, ARecordTheBacklogDroppedStaysInItsJournalForTheNextOpen) {
  TempDir dir;
  const std::string base = (dir.path() / "ledger.db").string();
  auto control = std::make_shared<Control>();
  control->fail = true;
  LedgerOptions options;
  options.retry_interval = std::chrono::milliseconds(20);
  options.max_backlog = 1;
  auto ledger = open_controlled(control, options, base);
  ASSERT_TRUE(ledger);
  auto journal = ledger->open_journal();
  ASSERT_TRUE(journal);
  const std::string path = journal->path();
  auto first = write_turn(*journal, {sized_record(1)});
  EXPECT_FALSE(appended(*ledger, first, journal));
  auto second = write_turn(*journal, {sized_record(2)});
  EXPECT_FALSE(appended(*ledger, second, journal));  // the backlog overflows: the first is dropped
  {
    std::lock_guard lock(control->mutex);
    control->fail = false;
  }
  EXPECT_TRUE(wait_for(*control, [&] { return control->ids.size() == 1; }));
  EXPECT_NE(ledger->health().degraded.find("holds a record the writer gave up"), std::string::npos)
      << ledger->health().degraded;
  ledger->close();
  EXPECT_EQ(control->ids, std::vector<std::string>{second[0].record.id});
  journal.reset();
  std::vector<std::string> replayed;
  replay_orphaned_journals(base, [&](std::vector<KeyedRecord> records) -> Result<void> {
    for (const auto& r : records) replayed.push_back(r.key);
    return {};
  });
  EXPECT_EQ(replayed, keys_of({first[0], second[0]})) << "the dropped record is replayed at the next open";
}

TEST(Journal, AnIndexThatCannotBeOpenedIsPassedOver) {
  TempDir dir;
  const std::string base = (dir.path() / "ledger.db").string();
  fs::create_directory(journal_path(base, 0));  // not a file this process can open for writing
  auto journal = open_journal_or_die(base);
  ASSERT_TRUE(journal);
  EXPECT_EQ(journal->path(), journal_path(base, 1));
}

TEST(QueuedJournal, ALoopWithoutAJournalIsToldInHealth) {
  TempDir dir;
  auto control = std::make_shared<Control>();
  // A ledger whose directory is gone: no journal file can be made.
  auto ledger = open_controlled(control, LedgerOptions{}, (dir.path() / "missing" / "ledger.db").string());
  ASSERT_TRUE(ledger);
  EXPECT_FALSE(ledger->open_journal());
  const LedgerHealth health = ledger->health();
  EXPECT_TRUE(health.healthy);
  EXPECT_NE(health.degraded.find("ledger journal hand-off off for 1 of 1 event loops"), std::string::npos)
      << health.degraded;
  EXPECT_NE(health.degraded.find("No such file or directory"), std::string::npos) << health.degraded;
}

// A journal write that fails while serving (a full disk, an I/O error; here a file-size
// limit) is counted and puts the loop's journal off, for /metrics and /health.
TEST(QueuedJournal, AFailedJournalWriteIsCountedInHealth) {
  TempDir dir;
  auto control = std::make_shared<Control>();
  auto ledger = open_controlled(control, LedgerOptions{}, (dir.path() / "ledger.db").string());
  ASSERT_TRUE(ledger);
  auto journal = ledger->open_journal();
  ASSERT_TRUE(journal);
  EXPECT_EQ(ledger->health().journals_off, 0u);
  bool written = true;
  {
    // pwrite(2) past RLIMIT_FSIZE fails with EFBIG (SIGXFSZ ignored), whatever the file's size.
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit old_limit {};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    struct rlimit tiny = old_limit;
    tiny.rlim_cur = 1;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &tiny), 0);
    write_turn(*journal, {sized_record(1)}, &written);
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    std::signal(SIGXFSZ, old_handler);
  }
  EXPECT_FALSE(written);
  EXPECT_EQ(journal->write_errno(), EFBIG);
  LedgerHealth health = ledger->health();
  EXPECT_EQ(health.journal_write_failures, 1u);
  EXPECT_EQ(health.journals_off, 1u);
  EXPECT_NE(health.degraded.find("the last write failed"), std::string::npos) << health.degraded;
  // A write that works puts it back on; the count stays.
  write_turn(*journal, {sized_record(2)}, &written);
  EXPECT_TRUE(written);
  health = ledger->health();
  EXPECT_EQ(health.journal_write_failures, 1u);
  EXPECT_EQ(health.journals_off, 0u);
  ledger->close();
}

}  // namespace
