// Corruption of a real log at every record boundary: truncations and torn records at the
// tail are repaired; anything else (a flipped byte anywhere, a short sealed segment) is
// refused with an error naming the file and the record's offset.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/loop.h"
#include "raft/wal_record.h"
#include "raft/wal_storage.h"
#include "tests/storage/storage_fixtures.h"

namespace uraft {
namespace {

using test::TempDir;

WalOptions options() {
  WalOptions o;
  o.segment_bytes = 4096;
  o.group_bytes_max = 4096;
  o.warn = [](std::string_view) {};
  return o;
}

Task<void> build_log(std::string dir) {
  auto wal = co_await WalStorage::open(dir, options());
  for (std::uint64_t i = 1; i <= 40; ++i) {
    const HardState hard{Term(i), NodeId(1)};
    if (i % 10 == 1) co_await wal->save_hard_state(hard);
    std::vector<LogEntry> entries;
    entries.push_back(LogEntry{Term(i), "command-" + std::to_string(i) + std::string(150, 'c')});
    co_await wal->append(LogIndex(i), std::move(entries));
  }
  co_await wal->close();
}

struct Outcome {
  bool opened = false;
  std::size_t warnings = 0;
  std::vector<LogEntry> entries;
  std::string error;
  std::string file;
  std::uint64_t offset = 0;
};

Task<void> try_open(std::string dir, Outcome* out) {
  try {
    auto wal = co_await WalStorage::open(dir, options());
    out->opened = true;
    out->warnings = wal->recovery_warnings().size();
    out->entries = (co_await wal->load()).entries;
    co_await wal->close();
  } catch (const WalRecoveryError& e) {
    out->error = e.what();
    out->file = e.file;
    out->offset = e.offset;
  }
}

// Record boundaries of a segment file: each record's offset, then where the records end.
std::vector<std::size_t> boundaries(const std::vector<std::byte>& file) {
  std::vector<std::size_t> offsets;
  std::size_t offset = 0;
  WalRecordView v;
  while (read_wal_record(file, offset, v) == WalReadStatus::kOk) {
    offsets.push_back(offset);
    offset += v.size;
  }
  offsets.push_back(offset);
  return offsets;
}

bool is_prefix(const std::vector<LogEntry>& got, const std::vector<LogEntry>& all) {
  if (got.size() > all.size()) return false;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!(got[i] == all[i])) return false;
  }
  return true;
}

TEST_CASE("wal corruption: every truncation and byte flip at every record boundary") {
  // Goal: torn tails are repaired, every other damage is refused with the right message.
  TempDir pristine;
  auto loop = Loop::uring();
  loop->run(build_log(pristine.path()));
  Outcome clean;
  loop->run(try_open(pristine.path(), &clean));
  REQUIRE(clean.opened);
  REQUIRE(clean.entries.size() == 40);

  std::vector<std::string> segments;
  for (const std::string& n : test::files_in(pristine.path())) {
    if (n.starts_with("wal-")) segments.push_back(n);
  }
  REQUIRE(segments.size() >= 3);

  int repaired = 0;
  int refused = 0;
  for (std::size_t s = 0; s < segments.size(); ++s) {
    const bool last = s + 1 == segments.size();
    const std::vector<std::byte> original = test::read_file(pristine.file(segments[s]));
    const std::vector<std::size_t> bounds = boundaries(original);
    for (std::size_t r = 0; r < bounds.size(); ++r) {
      const std::size_t b = bounds[r];
      const bool record = r + 1 < bounds.size();  // A record starts at b (else: the end).
      CAPTURE(segments[s]);
      CAPTURE(b);
      // Three damages: cut at the boundary, cut inside the record (torn), flip a byte in it.
      for (int kind = 0; kind < 3; ++kind) {
        if (kind > 0 && !record) continue;
        CAPTURE(kind);
        TempDir work;
        for (const std::string& n : test::files_in(pristine.path())) {
          if (n != "LOCK") std::filesystem::copy_file(pristine.file(n), work.file(n));
        }
        std::vector<std::byte> bytes = original;
        if (kind == 0) bytes.resize(b);
        if (kind == 1) bytes.resize(b + 7);
        if (kind == 2) bytes[b + 2 + (r % 2) * 18] ^= std::byte{0x10};  // Header or payload.
        test::write_file(work.file(segments[s]), bytes);
        Outcome out;
        loop->run(try_open(work.path(), &out));
        if (!last && !record) {
          CHECK(out.opened);  // Cut right after the seal: nothing is missing.
          CHECK(out.entries.size() == clean.entries.size());
        } else if (last && kind < 2) {
          CHECK(out.opened);
          CHECK(is_prefix(out.entries, clean.entries));
          if (kind == 1) CHECK(out.warnings >= 1);
          ++repaired;
        } else {
          CHECK_FALSE(out.opened);
          CHECK(out.file.ends_with(segments[s]));
          if (kind == 2) {
            CHECK(out.offset == b);
            CHECK(out.error.find("checksum") != std::string::npos);
          } else {
            CHECK(out.error.find("without its seal") != std::string::npos);
          }
          ++refused;
        }
      }
    }
  }
  CHECK(repaired >= 5);
  CHECK(refused > 50);
}

}  // namespace
}  // namespace uraft
