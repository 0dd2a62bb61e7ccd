// Helpers shared by the storage tests: a temporary data directory, random writes applied
// to a Storage and to a reference MemStorage, and reading a directory's files raw.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/rng.h"
#include "raft/mem_storage.h"
#include "raft/storage.h"

namespace uraft::test {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "uraft-storage-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::vector<std::byte> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  for (std::size_t i = 0; i < chars.size(); ++i) bytes[i] = static_cast<std::byte>(chars[i]);
  return bytes;
}

inline void write_file(const std::string& path, const std::vector<std::byte>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

inline std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

inline std::string random_command(Rng& rng, std::size_t max_bytes) {
  std::string s(rng.uniform(0, max_bytes), '\0');
  for (char& c : s) c = static_cast<char>(rng.uniform(1, 255));
  return s;
}

// One random write that is legal for storage holding `model`'s state.
struct RandomWrite {
  enum class Kind { kHardState, kAppend, kSnapshot } kind = Kind::kAppend;
  HardState hard_state;
  LogIndex first;
  std::vector<LogEntry> entries;
  SnapshotRecord snapshot;
  SnapshotLogAction action = SnapshotLogAction::kKeepSuffix;
};

// `state` is what the storage holds now (a load() of the reference model).
inline RandomWrite random_write(Rng& rng, const RecoveredState& state, std::size_t command_bytes_max) {
  RandomWrite w;
  const LogIndex base = state.snapshot ? state.snapshot->last_included_index : LogIndex{0};
  const LogIndex last{base.value + state.entries.size()};
  const std::uint64_t pick = rng.uniform(0, 99);
  const Term term = state.hard_state.current_term;
  if (pick < 15) {
    w.kind = RandomWrite::Kind::kHardState;
    w.hard_state = HardState{Term{term.value + rng.uniform(0, 1)},
                             rng.uniform(0, 1) ? kNoNode : NodeId{static_cast<std::uint32_t>(rng.uniform(0, 4))}};
  } else if (pick < 93 || last == base) {
    w.kind = RandomWrite::Kind::kAppend;
    // Mostly at the end; sometimes replacing a suffix.
    std::uint64_t first = last.value + 1;
    if (rng.uniform(0, 4) == 0 && last > base) first = rng.uniform(base.value + 1, last.value + 1);
    w.first = LogIndex{first};
    const std::uint64_t n = rng.uniform(0, 6);
    for (std::uint64_t i = 0; i < n; ++i) {
      w.entries.push_back(LogEntry{Term{term.value + 1}, random_command(rng, command_bytes_max)});
    }
  } else {
    w.kind = RandomWrite::Kind::kSnapshot;
    const bool discard = rng.uniform(0, 3) == 0;
    const std::uint64_t index = discard ? rng.uniform(base.value + 1, last.value + 3)
                                        : rng.uniform(base.value + 1, last.value);
    w.action = discard ? SnapshotLogAction::kDiscardLog : SnapshotLogAction::kKeepSuffix;
    Term snap_term{term.value + 1};
    if (!discard && index < last.value) snap_term = state.entries[index - base.value - 1].term;
    w.snapshot = SnapshotRecord{LogIndex{index}, snap_term, random_command(rng, 3000)};
  }
  return w;
}

inline Task<void> apply_write(Storage& storage, RandomWrite w) {
  switch (w.kind) {
    case RandomWrite::Kind::kHardState:
      co_await storage.save_hard_state(w.hard_state);
      break;
    case RandomWrite::Kind::kAppend:
      co_await storage.append(w.first, std::move(w.entries));
      break;
    case RandomWrite::Kind::kSnapshot: {
      SnapshotRecord s = std::move(w.snapshot);
      co_await storage.save_snapshot(std::move(s), w.action);
      break;
    }
  }
}

inline void check_same(const RecoveredState& got, const RecoveredState& want) {
  CHECK(got.hard_state == want.hard_state);
  CHECK(got.snapshot.has_value() == want.snapshot.has_value());
  if (got.snapshot && want.snapshot) CHECK(*got.snapshot == *want.snapshot);
  CHECK(got.entries.size() == want.entries.size());
  if (got.entries.size() == want.entries.size()) {
    for (std::size_t i = 0; i < got.entries.size(); ++i) {
      if (!(got.entries[i] == want.entries[i])) {
        FAIL_CHECK("entry " << i << " differs");
        break;
      }
    }
  }
}

}  // namespace uraft::test
