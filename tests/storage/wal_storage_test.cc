// WalStorage on a real io_uring loop and a temporary directory: what is written comes back
// after reopening (against MemStorage as the reference), group commit, segments and
// compaction, snapshots, recovery repairs and refusals, the lock, and full or failing disks.
#include "raft/wal_storage.h"

#include <doctest/doctest.h>
#include <sys/mount.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/loop.h"
#include "core/scope.h"
#include "raft/mem_storage.h"
#include "raft/wal_record.h"
#include "tests/storage/storage_fixtures.h"

namespace uraft {
namespace {

using test::TempDir;

std::vector<LogEntry> entries_of(Term term, std::vector<std::string> commands) {
  std::vector<LogEntry> out;
  for (std::string& c : commands) out.push_back(LogEntry{term, std::move(c)});
  return out;
}

// Builders that keep braced lists out of co_await expressions (a g++ 12 coroutine bug).
std::vector<LogEntry> one_entry(std::uint64_t term, std::string command) {
  std::vector<LogEntry> out;
  out.push_back(LogEntry{Term{term}, std::move(command)});
  return out;
}
HardState hard(std::uint64_t term, std::uint32_t vote) { return HardState{Term{term}, NodeId{vote}}; }
SnapshotRecord snap(std::uint64_t index, std::uint64_t term, std::string data) {
  return SnapshotRecord{LogIndex(index), Term{term}, std::move(data)};
}

WalOptions small_segments(std::uint64_t bytes = 4096) {
  WalOptions o;
  o.segment_bytes = bytes;
  o.group_bytes_max = 4096;
  o.warn = [](std::string_view) {};
  return o;
}

// Runs a scenario on a fresh io_uring loop.
template <typename F>
void run_on_uring(F scenario) {
  auto loop = Loop::uring();
  loop->run(scenario());
  CHECK(loop->backend().inflight() == 0);
}

Task<void> basic_roundtrip(std::string dir) {
  auto wal = co_await WalStorage::open(dir, small_segments(1 << 20));
  RecoveredState empty = co_await wal->load();
  CHECK(empty.hard_state == HardState{});
  CHECK_FALSE(empty.snapshot.has_value());
  CHECK(empty.entries.empty());
  co_await wal->save_hard_state(hard(3, 1));
  std::vector<LogEntry> four = entries_of(Term{3}, {"a", "b", "c", "d"});
  co_await wal->append(LogIndex(1), std::move(four));
  // A conflicting suffix replaces entries 3 and 4.
  co_await wal->append(LogIndex(3), one_entry(4, "x"));
  co_await wal->save_hard_state(hard(4, kNoNode.value));
  co_await wal->close();

  auto again = co_await WalStorage::open(dir, small_segments(1 << 20));
  RecoveredState s = co_await again->load();
  CHECK(s.hard_state == HardState{Term{4}, kNoNode});
  REQUIRE(s.entries.size() == 3);
  CHECK(s.entries[0] == LogEntry{Term{3}, "a"});
  CHECK(s.entries[1] == LogEntry{Term{3}, "b"});
  CHECK(s.entries[2] == LogEntry{Term{4}, "x"});
  CHECK(again->last_index() == LogIndex(3));
  CHECK(again->recovery_warnings().empty());
  co_await again->close();
}

TEST_CASE("wal: hard state, entries and a suffix truncation survive reopening") {
  // Goal: the basic contract — what was written (and completed) comes back after a reopen.
  TempDir dir;
  run_on_uring([&] { return basic_roundtrip(dir.path()); });
}

Task<void> random_against_model(std::string dir, std::uint64_t seed, int writes) {
  Rng rng(seed);
  MemStorage model;
  auto wal = co_await WalStorage::open(dir, small_segments());
  for (int i = 0; i < writes; ++i) {
    const RecoveredState now = co_await model.load();
    test::RandomWrite w = test::random_write(rng, now, 200);
    co_await test::apply_write(model, w);
    co_await test::apply_write(*wal, std::move(w));
    if (rng.uniform(0, 30) == 0) {
      co_await wal->close();
      wal = co_await WalStorage::open(dir, small_segments());
      test::check_same(co_await wal->load(), co_await model.load());
    }
  }
  test::check_same(co_await wal->load(), co_await model.load());  // load() after writes re-reads.
  const std::vector<std::string> segments = wal->segment_names();
  CHECK(segments.back() > "wal-00000000000000000003.log");   // Rotated,
  CHECK(segments.front() != "wal-00000000000000000001.log");  // and compacted.
  co_await wal->close();
  wal = co_await WalStorage::open(dir, small_segments());
  test::check_same(co_await wal->load(), co_await model.load());
  co_await wal->close();
}

TEST_CASE("wal: random writes with snapshots and reopens match MemStorage") {
  // Goal: recovery reproduces exactly the reference state, across segment rotation,
  // suffix truncation, both snapshot actions and compaction of whole segments.
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    CAPTURE(seed);
    TempDir dir;
    run_on_uring([&] { return random_against_model(dir.path(), seed, 200); });
  }
}

Task<void> append_one(WalStorage* wal, LogIndex index, std::string command, int* done) {
  co_await wal->append(index, one_entry(1, std::move(command)));
  ++*done;
}

Task<void> group_commit(std::string dir, std::shared_ptr<FaultyFiles> files) {
  WalOptions o = small_segments(1 << 20);
  o.files = files;
  auto wal = co_await WalStorage::open(dir, o);
  Scope scope;
  int done = 0;
  const std::uint64_t syncs_before = files->syncs();
  // 100 appends issued in one turn: their order is their index order.
  for (std::uint64_t i = 1; i <= 100; ++i) {
    scope.spawn(append_one(wal.get(), LogIndex(i), "cmd" + std::to_string(i), &done));
  }
  co_await scope.join();
  CHECK(done == 100);
  // One group (write + fdatasync), plus the first segment's creation.
  CHECK(wal->stats().groups <= 2);
  CHECK(files->syncs() - syncs_before <= 5);
  co_await wal->close();
  auto again = co_await WalStorage::open(dir, o);
  RecoveredState s = co_await again->load();
  REQUIRE(s.entries.size() == 100);
  CHECK(s.entries[99].command == "cmd100");
  co_await again->close();
}

TEST_CASE("wal: appends issued together share one write and one fdatasync") {
  // Goal: group commit — appends arriving while the writer is busy join one group.
  TempDir dir;
  auto files = std::make_shared<FaultyFiles>(std::make_shared<UringFiles>());
  run_on_uring([&] { return group_commit(dir.path(), files); });
}

Task<void> durable_before_done(std::string dir, std::shared_ptr<FaultyFiles> files) {
  WalOptions o = small_segments(1 << 20);
  o.files = files;
  auto wal = co_await WalStorage::open(dir, o);
  for (std::uint64_t i = 1; i <= 5; ++i) {
    const std::uint64_t syncs = files->syncs();
    co_await wal->append(LogIndex(i), one_entry(1, "x"));
    CHECK(files->syncs() > syncs);  // No append completes before an fdatasync after it.
  }
  co_await wal->close();
}

TEST_CASE("wal: an append completes only after an fdatasync that covers it") {
  // Goal: nothing is acknowledged before it is durable.
  TempDir dir;
  auto files = std::make_shared<FaultyFiles>(std::make_shared<UringFiles>());
  run_on_uring([&] { return durable_before_done(dir.path(), files); });
}

Task<void> cancelled_wait(std::string dir) {
  auto wal = co_await WalStorage::open(dir, small_segments(1 << 20));
  {
    Scope scope;
    int done = 0;
    scope.spawn(append_one(wal.get(), LogIndex(1), "kept", &done));
    co_await yield();  // The append is ordered (issued) and waiting for durability.
    scope.cancel();
    co_await scope.join();
    CHECK(done == 0);
  }
  co_await wal->close();  // Waits for the write the cancelled task issued.
  auto again = co_await WalStorage::open(dir, small_segments(1 << 20));
  RecoveredState s = co_await again->load();
  REQUIRE(s.entries.size() == 1);
  CHECK(s.entries[0].command == "kept");
  co_await again->close();
}

TEST_CASE("wal: cancelling the wait does not cancel the write") {
  // Goal: the Storage contract — a write is ordered when first awaited; only the wait for
  // durability is cancellable.
  TempDir dir;
  run_on_uring([&] { return cancelled_wait(dir.path()); });
}

Task<void> snapshots_and_files(std::string dir) {
  auto wal = co_await WalStorage::open(dir, small_segments());
  for (std::uint64_t i = 1; i <= 60; ++i) {
    co_await wal->append(LogIndex(i), one_entry(2, std::string(200, 'a')));
  }
  const std::size_t segments = wal->segment_names().size();
  CHECK(segments > 3);
  co_await wal->save_snapshot(snap(50, 2, "state-50"), SnapshotLogAction::kKeepSuffix);
  CHECK(wal->segment_names().size() < segments);
  std::vector<std::string> names = test::files_in(dir);
  CHECK(std::count(names.begin(), names.end(), "snapshot-00000000000000000050.snap") == 1);
  co_await wal->save_snapshot(snap(55, 2, "state-55"), SnapshotLogAction::kKeepSuffix);
  names = test::files_in(dir);
  CHECK(std::count(names.begin(), names.end(), "snapshot-00000000000000000050.snap") == 0);  // Superseded.
  CHECK(std::count(names.begin(), names.end(), "snapshot-00000000000000000055.snap") == 1);
  co_await wal->close();
  auto again = co_await WalStorage::open(dir, small_segments());
  RecoveredState s = co_await again->load();
  REQUIRE(s.snapshot.has_value());
  CHECK(*s.snapshot == snap(55, 2, "state-55"));
  CHECK(s.entries.size() == 5);
  co_await again->close();
}

TEST_CASE("wal: snapshots replace the previous file and compaction drops whole segments") {
  // Goal: a durable snapshot supersedes the old file and the segments it covers.
  TempDir dir;
  run_on_uring([&] { return snapshots_and_files(dir.path()); });
}

std::vector<std::string> temporaries_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const std::string& n : test::files_in(dir)) {
    if (n.ends_with(".tmp")) out.push_back(n);
  }
  return out;
}

// Appends `count` pieces: "0123", "4567", ... (ten digits, round and round).
Task<void> append_pieces(SnapshotSink& sink, int count) {
  for (int i = 0; i < count; ++i) {
    std::string piece;
    for (int j = 0; j < 4; ++j) piece += static_cast<char>('0' + (4 * i + j) % 10);
    co_await sink.append(std::move(piece));
  }
}

Task<void> snapshot_through_sink(std::string dir) {
  auto wal = co_await WalStorage::open(dir, small_segments());
  co_await wal->save_hard_state(hard(1, 0));
  for (std::uint64_t i = 1; i <= 5; ++i) co_await wal->append(LogIndex(i), one_entry(1, "e"));
  {
    // Abandoned half-way (a leader's snapshot superseded): its file goes at once.
    std::unique_ptr<SnapshotSink> abandoned = wal->snapshot_sink(LogIndex(3), Term{1});
    co_await append_pieces(*abandoned, 2);
    CHECK(temporaries_in(dir).size() == 1);
  }
  CHECK(temporaries_in(dir).empty());
  std::unique_ptr<SnapshotSink> sink = wal->snapshot_sink(LogIndex(4), Term{1});
  co_await append_pieces(*sink, 3);
  CHECK(sink->size() == 12);
  SnapshotData data = co_await sink->finish();
  CHECK(data == "012345678901");
  CHECK(data.read(3, 4) == "3456");
  CHECK(temporaries_in(dir).size() == 1);
  SnapshotRecord record{LogIndex(4), Term{1}, data};
  co_await wal->save_snapshot(std::move(record), SnapshotLogAction::kKeepSuffix);
  // Renamed into place (no copy); the bytes still read.
  CHECK(temporaries_in(dir).empty());
  const std::vector<std::string> files = test::files_in(dir);
  CHECK(std::count(files.begin(), files.end(), "snapshot-00000000000000000004.snap") == 1);
  CHECK(data.str() == "012345678901");
  co_await wal->close();

  auto again = co_await WalStorage::open(dir, small_segments());
  RecoveredState s = co_await again->load();
  REQUIRE(s.snapshot.has_value());
  CHECK(s.snapshot->last_included_index == LogIndex(4));
  CHECK(s.snapshot->data == "012345678901");
  CHECK(s.snapshot->data.read(8, 100) == "8901");
  REQUIRE(s.entries.size() == 1);
  co_await again->close();
}

TEST_CASE("wal: a snapshot written through a sink is renamed into place, and an abandoned one removed at once") {
  // Goal: a received or a service's snapshot goes to disk as it arrives and is not copied;
  // temporaries nobody will finish do not pile up.
  TempDir dir;
  run_on_uring([&] { return snapshot_through_sink(dir.path()); });
}

Task<void> write_some(std::string dir, WalOptions o, std::uint64_t count) {
  auto wal = co_await WalStorage::open(dir, o);
  co_await wal->save_hard_state(hard(1, 0));
  for (std::uint64_t i = 1; i <= count; ++i) {
    co_await wal->append(LogIndex(i), one_entry(1, "entry-" + std::to_string(i) + std::string(100, '.')));
  }
  co_await wal->close();
}

Task<void> expect_entries(std::string dir, WalOptions o, std::uint64_t count, std::size_t warnings) {
  auto wal = co_await WalStorage::open(dir, o);
  CHECK(wal->recovery_warnings().size() == warnings);
  RecoveredState s = co_await wal->load();
  CHECK(s.entries.size() == count);
  if (s.entries.size() == count && count > 0) CHECK(s.entries.back().command.starts_with("entry-" + std::to_string(count) + "."));
  co_await wal->close();
}

Task<void> expect_refusal(std::string dir, WalOptions o, std::string file, std::string words) {
  bool refused = false;
  try {
    auto wal = co_await WalStorage::open(dir, o);
    co_await wal->close();
  } catch (const WalRecoveryError& e) {
    refused = true;
    CAPTURE(e.what());
    CHECK(e.file.ends_with(file));
    CHECK(std::string(e.what()).find(words) != std::string::npos);
  }
  CHECK(refused);
}

Task<void> append_at(std::string dir, WalOptions o, LogIndex index, std::string command) {
  auto wal = co_await WalStorage::open(dir, o);
  co_await wal->append(index, one_entry(1, std::move(command)));
  co_await wal->close();
}

Task<void> snapshot_at(std::string dir, WalOptions o, LogIndex index) {
  auto wal = co_await WalStorage::open(dir, o);
  SnapshotRecord snapshot{index, Term{1}, "snapshot data"};
  co_await wal->save_snapshot(std::move(snapshot), SnapshotLogAction::kKeepSuffix);
  co_await wal->close();
}

Task<void> check_orphan(std::string dir, WalOptions o) {
  auto wal = co_await WalStorage::open(dir, o);
  RecoveredState s = co_await wal->load();
  REQUIRE(s.snapshot.has_value());
  CHECK(s.snapshot->last_included_index == LogIndex(5));
  CHECK(s.entries.size() == 5);
  co_await wal->close();
}

std::string last_segment(const std::string& dir) {
  std::string last;
  for (const std::string& n : test::files_in(dir)) {
    if (n.starts_with("wal-")) last = n;
  }
  return last;
}

// The offset where the written records of a segment end.
std::size_t records_end(const std::vector<std::byte>& file) {
  std::size_t offset = 0;
  WalRecordView v;
  while (read_wal_record(file, offset, v) == WalReadStatus::kOk) offset += v.size;
  return offset;
}

TEST_CASE("wal: a torn last record is truncated with a warning, then writing goes on") {
  // Goal: a partial write at the tail (a crash mid-write) is repaired, not refused.
  TempDir dir;
  run_on_uring([&] { return write_some(dir.path(), small_segments(1 << 20), 10); });
  const std::string path = dir.file(last_segment(dir.path()));
  std::vector<std::byte> bytes = test::read_file(path);
  const std::size_t end = records_end(bytes);
  // A record header promising 2000 bytes, of which only 100 reached the disk.
  std::vector<std::byte> rec;
  append_wal_record(rec, WalRecordType::kEntries, std::vector<std::byte>(2000, std::byte{7}));
  std::copy(rec.begin(), rec.begin() + 116, bytes.begin() + static_cast<std::ptrdiff_t>(end));
  test::write_file(path, bytes);
  WalOptions quiet = small_segments(1 << 20);
  run_on_uring([&] { return expect_entries(dir.path(), quiet, 10, 1); });
  run_on_uring([&] { return expect_entries(dir.path(), quiet, 10, 0); });  // Repaired for good.
  run_on_uring([&] { return append_at(dir.path(), quiet, LogIndex(11), "entry-11."); });
  run_on_uring([&] { return expect_entries(dir.path(), quiet, 11, 0); });
}

TEST_CASE("wal: a corrupt record before the tail is refused, naming the file and offset") {
  // Goal: corruption of acknowledged data stops the node instead of serving wrong data.
  TempDir dir;
  run_on_uring([&] { return write_some(dir.path(), small_segments(), 40); });
  const std::vector<std::string> names = test::files_in(dir.path());
  const std::string first = names.front().starts_with("wal-") ? names.front() : names[1];
  REQUIRE(first.starts_with("wal-"));
  std::vector<std::byte> bytes = test::read_file(dir.file(first));
  WalRecordView header;
  REQUIRE(read_wal_record(bytes, 0, header) == WalReadStatus::kOk);
  const std::size_t second = header.size;
  bytes[second + 20] ^= std::byte{0x40};
  test::write_file(dir.file(first), bytes);
  run_on_uring([&] {
    return expect_refusal(dir.path(), small_segments(), first,
                          "offset " + std::to_string(second) + ": bad record payload checksum");
  });
}

TEST_CASE("wal: a missing segment or an unreadable snapshot is refused") {
  // Goal: recovery never silently skips what the log says must be there.
  TempDir dir;
  run_on_uring([&] { return write_some(dir.path(), small_segments(), 100); });
  std::vector<std::string> segments;
  for (const std::string& n : test::files_in(dir.path())) {
    if (n.starts_with("wal-")) segments.push_back(n);
  }
  REQUIRE(segments.size() >= 4);
  std::filesystem::rename(dir.file(segments[1]), dir.path() + "/aside");
  run_on_uring([&] { return expect_refusal(dir.path(), small_segments(), segments[1], "missing segment"); });
  std::filesystem::rename(dir.path() + "/aside", dir.file(segments[1]));
  // The first segment gone: the second's header says the log continues from it.
  std::filesystem::rename(dir.file(segments[0]), dir.path() + "/aside");
  run_on_uring([&] { return expect_refusal(dir.path(), small_segments(), segments[1], "missing segment"); });
  std::filesystem::rename(dir.path() + "/aside", dir.file(segments[0]));
  run_on_uring([&] { return expect_entries(dir.path(), small_segments(), 100, 0); });

  run_on_uring([&] { return snapshot_at(dir.path(), small_segments(), LogIndex(30)); });
  const std::string snap = dir.file("snapshot-00000000000000000030.snap");
  std::vector<std::byte> bytes = test::read_file(snap);
  bytes.back() ^= std::byte{1};
  test::write_file(snap, bytes);
  run_on_uring([&] { return expect_refusal(dir.path(), small_segments(), "snapshot-00000000000000000030.snap", "bad data checksum"); });
  std::filesystem::remove(snap);
  run_on_uring([&] { return expect_refusal(dir.path(), small_segments(), "snapshot-00000000000000000030.snap", "missing"); });
}

Task<void> orphan_snapshot(std::string dir) {
  auto wal = co_await WalStorage::open(dir, small_segments());
  for (std::uint64_t i = 1; i <= 10; ++i) co_await wal->append(LogIndex(i), one_entry(1, "e"));
  co_await wal->save_snapshot(snap(5, 1, "five"), SnapshotLogAction::kKeepSuffix);
  co_await wal->close();
}

TEST_CASE("wal: a snapshot file whose log record never became durable is ignored and removed") {
  // Goal: crash between the snapshot's rename and its log record → the previous snapshot
  // stays current (the new write did not happen), and leftovers are cleaned up.
  TempDir dir;
  run_on_uring([&] { return orphan_snapshot(dir.path()); });
  std::filesystem::copy_file(dir.file("snapshot-00000000000000000005.snap"),
                             dir.file("snapshot-00000000000000000008.snap"));
  test::write_file(dir.file("snapshot-00000000000000000009.snap.tmp"), std::vector<std::byte>(10));
  std::vector<std::string> warnings;
  WalOptions o = small_segments();
  o.warn = [&](std::string_view w) { warnings.emplace_back(w); };
  run_on_uring([&] { return check_orphan(dir.path(), o); });
  CHECK(warnings.size() == 2);
  const std::vector<std::string> names = test::files_in(dir.path());
  CHECK(std::count(names.begin(), names.end(), "snapshot-00000000000000000008.snap") == 0);
  CHECK(std::count(names.begin(), names.end(), "snapshot-00000000000000000009.snap.tmp") == 0);
}

Task<void> locked(std::string dir) {
  auto wal = co_await WalStorage::open(dir, small_segments(1 << 20));
  bool refused = false;
  try {
    auto second = co_await WalStorage::open(dir, small_segments(1 << 20));
  } catch (const WalRecoveryError& e) {
    refused = true;
    CHECK(std::string(e.what()).find("in use by another process (pid " + std::to_string(::getpid())) !=
          std::string::npos);
  }
  CHECK(refused);
  co_await wal->close();
  auto third = co_await WalStorage::open(dir, small_segments(1 << 20));  // Released by close().
  co_await third->close();
}

TEST_CASE("wal: the lock file keeps a second opener out") {
  // Goal: two processes never write one data directory.
  TempDir dir;
  run_on_uring([&] { return locked(dir.path()); });
}

Task<void> disk_full(std::string dir, std::shared_ptr<FaultyFiles> files) {
  WalOptions o = small_segments();
  o.files = files;
  o.no_space_retry_interval = std::chrono::milliseconds(1);
  Event stalled;
  o.warn = [&stalled](std::string_view line) {
    if (line.find("no space left") != std::string_view::npos) stalled.set();
  };
  auto wal = co_await WalStorage::open(dir, o);
  std::uint64_t index = 0;
  // Fill the first segment, then leave no space for the next one.
  while (wal->segment_names().size() < 2) {
    ++index;
    co_await wal->append(LogIndex(index), one_entry(1, std::string(100, 'f')));
  }
  files->set_space_left(1000);  // Enough for no new segment.
  Scope scope;
  int done = 0;
  const std::uint64_t first = index + 1;
  for (int i = 0; i < 200; ++i) {
    ++index;
    scope.spawn(append_one(wal.get(), LogIndex(index), i == 199 ? "after the stall" : std::string(100, 'g'), &done));
  }
  co_await stalled.wait();  // No new segment fits: writes stop and say why.
  CHECK(wal->write_problem().find("no space left on device") != std::string::npos);
  const std::uint64_t refusals = files->no_space_errors();
  while (files->no_space_errors() < refusals + 3) co_await yield();  // Retried, still full.
  CHECK(done < 200);  // Stopped: what needs the new segment is not acknowledged.
  CHECK_FALSE(wal->failed());
  (void)first;
  files->set_space_left(UINT64_MAX);  // Space returns.
  co_await scope.join();
  CHECK(done == 200);
  CHECK(wal->write_problem().empty());
  CHECK(wal->stats().no_space_stalls >= 1);
  co_await wal->close();
  auto again = co_await WalStorage::open(dir, small_segments());
  RecoveredState s = co_await again->load();
  CHECK(s.entries.size() == index);
  CHECK(s.entries.back().command == "after the stall");
  co_await again->close();
}

TEST_CASE("wal: a full disk stops writes with a reason, and they resume when space returns") {
  // Goal: ENOSPC is an operating condition, not data loss: writes wait, then go on.
  TempDir dir;
  auto files = std::make_shared<FaultyFiles>(std::make_shared<UringFiles>());
  run_on_uring([&] { return disk_full(dir.path(), files); });
}

Task<void> io_error(std::string dir, std::shared_ptr<FaultyFiles> files, bool on_sync) {
  WalOptions o = small_segments(1 << 20);
  o.files = files;
  auto wal = co_await WalStorage::open(dir, o);
  co_await wal->append(LogIndex(1), one_entry(1, "durable"));
  if (on_sync) {
    files->fail_syncs(EIO);
  } else {
    files->fail_writes(EIO);
  }
  bool threw = false;
  try {
    co_await wal->append(LogIndex(2), one_entry(1, "lost"));
  } catch (const WalWriteError& e) {
    threw = true;
    CHECK(std::string(e.what()).find("Input/output error") != std::string::npos);
  }
  CHECK(threw);
  CHECK(wal->failed());
  threw = false;
  try {
    co_await wal->save_hard_state(hard(2, kNoNode.value));  // Later writes fail at once.
  } catch (const WalWriteError&) {
    threw = true;
  }
  CHECK(threw);
  co_await wal->close();
  auto again = co_await WalStorage::open(dir, small_segments(1 << 20));
  RecoveredState s = co_await again->load();
  REQUIRE(s.entries.size() >= 1);
  CHECK(s.entries[0].command == "durable");
  co_await again->close();
}

TEST_CASE("wal: an I/O error fails the write and every later one; reopening recovers") {
  // Goal: after EIO (on write or fdatasync) nothing more is acknowledged; data stays intact.
  for (const bool on_sync : {false, true}) {
    CAPTURE(on_sync);
    TempDir dir;
    auto files = std::make_shared<FaultyFiles>(std::make_shared<UringFiles>());
    run_on_uring([&] { return io_error(dir.path(), files, on_sync); });
  }
}

Task<void> tmpfs_full(std::string dir, std::string ballast) {
  WalOptions o = small_segments(32 * 1024);
  o.no_space_retry_interval = std::chrono::milliseconds(1);
  Event stalled;
  o.warn = [&stalled](std::string_view line) {
    if (line.find("no space left") != std::string_view::npos) stalled.set();
  };
  auto wal = co_await WalStorage::open(dir, o);
  Scope scope;
  int done = 0;
  const int total = 100;
  for (int i = 1; i <= total; ++i) {
    scope.spawn(append_one(wal.get(), LogIndex(static_cast<std::uint64_t>(i)), std::string(1000, 'z'), &done));
  }
  co_await stalled.wait();  // The file system filled up: writes stop and say why.
  CHECK(wal->write_problem().find("no space left on device") != std::string::npos);
  CHECK(done < total);
  CHECK_FALSE(wal->failed());
  std::filesystem::remove(ballast);  // Space returns.
  co_await scope.join();
  CHECK(done == total);
  CHECK(wal->write_problem().empty());
  co_await wal->close();
  auto again = co_await WalStorage::open(dir, small_segments(32 * 1024));
  RecoveredState s = co_await again->load();
  CHECK(s.entries.size() == static_cast<std::size_t>(total));
  co_await again->close();
}

TEST_CASE("wal: on a real, small, full file system writes stop and resume when space returns") {
  // Goal: ENOSPC from a real file system (a 256 KiB tmpfs), not only the fault layer.
  // Skipped (with a message) where this user may not mount one.
  TempDir dir;
  if (::mount("tmpfs", dir.path().c_str(), "tmpfs", 0, "size=256k") != 0) {
    MESSAGE("skipped: cannot mount a tmpfs here: " << std::strerror(errno));
    return;
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{dir.path()};
  test::write_file(dir.file("ballast"), std::vector<std::byte>(160 * 1024, std::byte{1}));
  run_on_uring([&] { return tmpfs_full(dir.file("data"), dir.file("ballast")); });
}

}  // namespace
}  // namespace uraft
