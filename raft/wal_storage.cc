// WalStorage: the writer (group commit, segments, snapshots, compaction) and recovery.
//
// Files in the data directory:
//   LOCK                         flock()ed by the process that has the directory open
//   wal-<seq, 20 digits>.log     segments, consecutive sequence numbers, oldest first
//   snapshot-<index>.snap        the current snapshot (and, until the next is durable, the
//                                previous one); written as <name>.tmp, fsynced, renamed
// docs/storage.md has the record payloads and the recovery rules.
#include "raft/wal_storage.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <utility>

#include "core/assert.h"
#include "core/loop.h"
#include "net/crc32c.h"
#include "net/little_endian.h"
#include "raft/wal_record.h"

namespace uraft {

WalRecoveryError::WalRecoveryError(std::string file_name, std::uint64_t file_offset,
                                   const std::string& reason)
    : std::runtime_error("cannot recover " + file_name +
                         (file_offset > 0 ? " at offset " + std::to_string(file_offset) : "") +
                         ": " + reason),
      file(std::move(file_name)),
      offset(file_offset) {}

struct WalStorage::Stage {
  enum class Kind : std::uint8_t { kGroup, kSnapshot };
  Kind kind = Kind::kGroup;
  std::vector<std::byte> bytes;  // kGroup: the records, back to back.
  std::uint64_t max_index = 0;   // kGroup: highest entry index its records write.
  HardState hard_after;          // The hard state once its records are in.
  LogIndex last_after;           // Storage's last index once its records are in.
  std::optional<SnapshotRecord> snapshot;  // kSnapshot.
  SnapshotLogAction action = SnapshotLogAction::kKeepSuffix;
  bool taken = false;  // The writer started it: nothing more joins.
  bool done = false;
  std::string error;  // Set if it failed.
  Event done_event;
};

namespace {

constexpr std::uint64_t kSegmentMagic = 0x4c41575446415255ULL;   // "URAFTWAL"
constexpr std::uint64_t kSnapshotMagic = 0x504e535446415255ULL;  // "URAFTSNP"
constexpr std::uint32_t kFormatVersion = 1;
constexpr std::size_t kSnapshotHeaderBytes = 44;
constexpr std::size_t kSealPayloadBytes = 8;
constexpr std::size_t kSealBytes = kWalRecordHeaderBytes + kSealPayloadBytes;
constexpr std::size_t kReadChunkBytes = std::size_t{64} << 20;
const std::string kLockName = "LOCK";

std::string segment_name(std::uint64_t seq) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "wal-%020" PRIu64 ".log", seq);
  return buf;
}
std::string snapshot_name(LogIndex index) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "snapshot-%020" PRIu64 ".snap", index.value);
  return buf;
}
// Parses "<prefix><20 digits><suffix>".
bool parse_numbered(const std::string& name, std::string_view prefix, std::string_view suffix,
                    std::uint64_t& number) {
  if (name.size() != prefix.size() + 20 + suffix.size()) return false;
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  number = 0;
  for (std::size_t i = prefix.size(); i < prefix.size() + 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    number = number * 10 + static_cast<std::uint64_t>(name[i] - '0');
  }
  return true;
}

void put(std::vector<std::byte>& out, std::uint64_t v, std::size_t bytes) {
  char buf[8];
  store_le(buf, v, bytes);
  const auto* b = reinterpret_cast<const std::byte*>(buf);
  out.insert(out.end(), b, b + bytes);
}
std::span<const std::byte> as_bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// Reads fixed-width fields from a payload; any read past its end makes ok false.
struct PayloadReader {
  std::span<const std::byte> data;
  std::size_t pos = 0;
  bool ok = true;
  std::uint64_t get(std::size_t bytes) {
    if (!ok || data.size() - pos < bytes) {
      ok = false;
      return 0;
    }
    const std::uint64_t v = load_le(data.data() + pos, bytes);
    pos += bytes;
    return v;
  }
  std::string get_string(std::size_t bytes) {
    if (!ok || data.size() - pos < bytes) {
      ok = false;
      return {};
    }
    std::string s(reinterpret_cast<const char*>(data.data() + pos), bytes);
    pos += bytes;
    return s;
  }
  bool finished() const { return ok && pos == data.size(); }
};

// The snapshot file's header, before its data: magic u64, version u32, data crc u32, index
// u64, term u64, data length u64, crc u32 of the 40 bytes before it.
std::vector<std::byte> snapshot_header(LogIndex index, Term term, std::uint64_t length,
                                       std::uint32_t crc) {
  std::vector<std::byte> out;
  put(out, kSnapshotMagic, 8);
  put(out, kFormatVersion, 4);
  put(out, crc, 4);
  put(out, index.value, 8);
  put(out, term.value, 8);
  put(out, length, 8);
  put(out, crc32c(std::span(out.data(), 40)), 4);
  return out;
}

}  // namespace

// Removes the temporary snapshot files given up on (a sink dropped half-way, a received
// snapshot superseded, a copy that failed) at once, while the directory is open, so that a
// full disk's retries do not fill it further; recovery sweeps any left by a crash or a close.
struct WalStorage::Temporaries {
  std::shared_ptr<WalFiles> files;
  int dir_fd = -1;  // -1 once the storage is closed.
  void remove(const std::string& name) const noexcept {
    if (dir_fd >= 0) files->unlink_now(dir_fd, name);
  }
};

// A snapshot file's data, read through its own fd (which survives the renames and the unlink
// that later make it current and then obsolete). Made by a sink under a temporary name, which
// goes on the storage's list of files to remove unless the storage adopts it as a snapshot.
class WalStorage::SnapshotFile final : public SnapshotData::Source {
 public:
  SnapshotFile(const void* owner, std::shared_ptr<WalFiles> files, int fd, std::string path,
               LogIndex index, Term term, std::uint64_t size, std::uint32_t crc,
               std::shared_ptr<Temporaries> temporaries, std::string temporary)
      : owner_(owner), files_(std::move(files)), fd_(fd), path_(std::move(path)), index_(index),
        term_(term), size_(size), crc_(crc), temporaries_(std::move(temporaries)),
        temporary_(std::move(temporary)) {}
  SnapshotFile(const SnapshotFile&) = delete;
  SnapshotFile& operator=(const SnapshotFile&) = delete;
  ~SnapshotFile() override {
    files_->close_now(fd_);
    if (!temporary_.empty()) temporaries_->remove(temporary_);
  }

  std::uint64_t size() const noexcept override { return size_; }
  std::uint32_t crc() const noexcept override { return crc_; }
  void read(std::uint64_t offset, std::span<char> out) const override {
    std::size_t done = 0;
    while (done < out.size()) {
      const IoResult r = files_->read_now(
          fd_, std::as_writable_bytes(out.subspan(done)), kSnapshotHeaderBytes + offset + done);
      if (!r.ok() || r.bytes() == 0) {
        throw std::runtime_error("cannot read the snapshot " + path_ + ": " +
                                 (r.ok() ? "it is shorter than its header says" : r.message()));
      }
      done += r.bytes();
    }
  }

  // This storage's file of snapshot (index, term), or null.
  static const SnapshotFile* of(const SnapshotData& data, const void* owner, LogIndex index, Term term) {
    const auto* f = dynamic_cast<const SnapshotFile*>(data.source());
    return f != nullptr && f->owner_ == owner && f->index_ == index && f->term_ == term ? f : nullptr;
  }
  int fd() const noexcept { return fd_; }
  const std::string& temporary() const noexcept { return temporary_; }
  // The storage renamed it into place: it is no longer a temporary to remove.
  void adopted() const noexcept { temporary_.clear(); }

 private:
  const void* owner_;
  std::shared_ptr<WalFiles> files_;
  int fd_;
  std::string path_;
  LogIndex index_;
  Term term_;
  std::uint64_t size_;
  std::uint32_t crc_;
  std::shared_ptr<Temporaries> temporaries_;
  mutable std::string temporary_;  // Empty once adopted (or for a recovered snapshot).
};

// Writes a snapshot's data after a header's room in a temporary file; finish() writes the
// header, syncs the file and hands it over (save_snapshot renames it into place). A
// write error or a full disk fails the sink, not the storage: nothing durable depends on it.
class WalStorage::SnapshotFileSink final : public SnapshotSink {
 public:
  SnapshotFileSink(const void* owner, std::shared_ptr<WalFiles> files, std::string dir,
                   LogIndex index, Term term, std::string temporary,
                   std::shared_ptr<Temporaries> temporaries)
      : owner_(owner), files_(std::move(files)), dir_(std::move(dir)), index_(index),
        term_(term), temporary_(std::move(temporary)), temporaries_(std::move(temporaries)) {}
  ~SnapshotFileSink() override {
    if (fd_ >= 0) {
      files_->close_now(fd_);
      temporaries_->remove(temporary_);
    }
  }

  std::uint64_t size() const noexcept override { return size_; }
  std::uint32_t crc() const noexcept override { return crc_; }

  Task<void> append(std::string bytes) override {
    URAFT_ASSERT(!finished_);
    const std::uint64_t at = size_;
    size_ += bytes.size();
    crc_ = crc32c(as_bytes(bytes), crc_);
    co_await write(std::as_bytes(std::span(bytes.data(), bytes.size())), kSnapshotHeaderBytes + at);
    if (size_ - synced_ >= kSyncEveryBytes) {
      // A bounded amount of it dirty at a time: a file system that flushes other files' data
      // with the log's own fdatasync (ext4's ordered mode) would make a group commit wait
      // for the whole snapshot.
      synced_ = size_;
      if (const IoResult r = co_await files_->fdatasync(fd_); !r.ok()) broken("cannot sync", r);
    }
  }

  Task<SnapshotData> finish() override {
    URAFT_ASSERT(!finished_);
    finished_ = true;
    const std::vector<std::byte> header = snapshot_header(index_, term_, size_, crc_);
    co_await write(header, 0);
    // Synced here, by whoever waits for the snapshot, rather than by the writer when it is
    // saved: a large file's sync would hold up the log's group commits behind it.
    if (const IoResult r = co_await files_->fdatasync(fd_); !r.ok()) broken("cannot sync", r);
    auto file = std::make_shared<SnapshotFile>(owner_, files_, std::exchange(fd_, -1),
                                               dir_ + "/" + temporary_, index_, term_, size_, crc_,
                                               temporaries_, temporary_);
    co_return SnapshotData(std::move(file));
  }

 private:
  Task<void> write(std::span<const std::byte> bytes, std::uint64_t offset) {
    if (fd_ < 0) {
      URAFT_ASSERT(!broken_);
      IoResult r{-EBADF};  // Unless the storage is still open.
      if (temporaries_->dir_fd >= 0) {
        r = co_await files_->open(temporaries_->dir_fd, temporary_, O_RDWR | O_CREAT | O_TRUNC, 0644);
      }
      if (!r.ok()) broken("cannot create", r);
      fd_ = r.res;
    }
    std::size_t done = 0;
    while (done < bytes.size()) {
      const IoResult r = co_await files_->write(fd_, bytes.subspan(done), offset + done);
      if (!r.ok() || r.bytes() == 0) broken("cannot write", r);
      done += r.bytes();
    }
  }
  [[noreturn]] void broken(const char* what, const IoResult& r) {
    broken_ = true;
    throw std::runtime_error(std::string(what) + " " + dir_ + "/" + temporary_ + ": " +
                             (r.ok() ? "no progress" : r.message()));
  }

  const void* owner_;
  std::shared_ptr<WalFiles> files_;
  std::string dir_;
  LogIndex index_;
  Term term_;
  std::string temporary_;
  std::shared_ptr<Temporaries> temporaries_;
  static constexpr std::uint64_t kSyncEveryBytes = std::uint64_t{16} << 20;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::uint64_t synced_ = 0;  // Data bytes up to here were synced (or are being).
  std::uint32_t crc_ = 0;
  bool finished_ = false;
  bool broken_ = false;
};

namespace {

struct SegmentHeader {
  std::uint64_t seq = 0;
  HardState hard_state;
  LogIndex last_index;      // Storage's last index when the segment began.
  LogIndex snapshot_index;  // The current snapshot's index then.
};

void encode_hard_state(std::vector<std::byte>& out, HardState h) {
  put(out, h.current_term.value, 8);
  put(out, h.voted_for.value, 4);
}

std::vector<std::byte> segment_header_record(const SegmentHeader& h) {
  std::vector<std::byte> payload;
  put(payload, kSegmentMagic, 8);
  put(payload, kFormatVersion, 4);
  put(payload, h.seq, 8);
  encode_hard_state(payload, h.hard_state);
  put(payload, h.last_index.value, 8);
  put(payload, h.snapshot_index.value, 8);
  std::vector<std::byte> record;
  append_wal_record(record, WalRecordType::kSegmentHeader, payload);
  return record;
}

struct SnapshotMarker {
  LogIndex index;
  Term term;
  SnapshotLogAction action = SnapshotLogAction::kKeepSuffix;
  std::uint64_t length = 0;
  std::uint32_t crc = 0;
};

// One decoded record and where it was.
struct Decoded {
  WalRecordType type{};
  std::size_t segment = 0;  // Position in the segment list.
  std::uint64_t offset = 0;
  SegmentHeader header;
  HardState hard_state;
  LogIndex first;  // kEntries.
  std::vector<LogEntry> entries;
  SnapshotMarker marker;
  std::uint64_t next_seq = 0;  // kSeal.
};

// Decodes a record whose checksums passed. False: the payload does not parse.
bool decode(const WalRecordView& r, Decoded& d, std::string& why) {
  PayloadReader in{r.payload};
  d.type = r.type;
  switch (r.type) {
    case WalRecordType::kSegmentHeader: {
      if (in.get(8) != kSegmentMagic) return why = "not a segment header", false;
      const std::uint64_t version = in.get(4);
      if (in.ok && version != kFormatVersion) {
        return why = "unknown format version " + std::to_string(version), false;
      }
      d.header.seq = in.get(8);
      d.header.hard_state.current_term = Term{in.get(8)};
      d.header.hard_state.voted_for = NodeId{static_cast<std::uint32_t>(in.get(4))};
      d.header.last_index = LogIndex{in.get(8)};
      d.header.snapshot_index = LogIndex{in.get(8)};
      break;
    }
    case WalRecordType::kHardState:
      d.hard_state.current_term = Term{in.get(8)};
      d.hard_state.voted_for = NodeId{static_cast<std::uint32_t>(in.get(4))};
      break;
    case WalRecordType::kEntries: {
      d.first = LogIndex{in.get(8)};
      const std::uint64_t count = in.get(4);
      if (in.ok && d.first.value == 0) return why = "entries at index 0", false;
      for (std::uint64_t i = 0; in.ok && i < count; ++i) {
        const Term term{in.get(8)};
        const std::uint64_t length = in.get(4);
        d.entries.push_back(LogEntry{term, in.get_string(length)});
      }
      break;
    }
    case WalRecordType::kSnapshot: {
      d.marker.index = LogIndex{in.get(8)};
      d.marker.term = Term{in.get(8)};
      const std::uint64_t action = in.get(1);
      if (in.ok && action > 1) return why = "unknown snapshot action", false;
      d.marker.action = static_cast<SnapshotLogAction>(action);
      d.marker.length = in.get(8);
      d.marker.crc = static_cast<std::uint32_t>(in.get(4));
      break;
    }
    case WalRecordType::kSeal:
      d.next_seq = in.get(8);
      break;
    default:
      return why = "unknown record type " + std::to_string(static_cast<int>(r.type)), false;
  }
  if (!in.finished()) return why = "malformed record payload", false;
  return true;
}

bool all_zero(std::span<const std::byte> bytes) {
  // Word at a time: recovery scans a whole preallocated segment tail.
  std::size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, bytes.data() + i, 8);
    if (word != 0) return false;
  }
  for (; i < bytes.size(); ++i) {
    if (bytes[i] != std::byte{0}) return false;
  }
  return true;
}

// Whether some whole sector overlapping [begin, end) of `file` is zero: the mark of a write
// that reached the disk only in part.
bool has_zero_sector(std::span<const std::byte> file, std::size_t begin, std::size_t end) {
  end = std::min(end, file.size());
  for (std::size_t s = begin / kWalSectorBytes * kWalSectorBytes; s < end; s += kWalSectorBytes) {
    if (s + kWalSectorBytes > file.size()) break;
    if (all_zero(file.subspan(s, kWalSectorBytes))) return true;
  }
  return false;
}

}  // namespace

// What recovery read from a data directory, before anything is repaired.
struct WalStorage::Impl {
  struct SegmentFile {
    std::uint64_t seq = 0;
    std::string name;
    std::vector<std::byte> bytes;
    std::uint64_t end = 0;         // Where the valid records end.
    std::uint64_t max_index = 0;   // Highest entry index its records write.
    bool sealed = false;
    bool torn = false;             // Bytes after `end` are to be zeroed.
    bool remove = false;           // A new segment whose header never became durable.
  };

  struct Scan {
    std::vector<SegmentFile> segments;
    std::vector<std::string> stale;  // Files to remove: temporaries, superseded snapshots.
    RecoveredState state;
    LogIndex last_index;
    std::vector<std::string> warnings;
  };

  static Task<std::vector<std::byte>> read_whole(WalFiles& files, int dir_fd, std::string name) {
    const IoResult opened = co_await files.open(dir_fd, name, O_RDONLY, 0);
    if (!opened.ok()) throw WalRecoveryError(name, 0, "cannot open: " + opened.message());
    const int fd = opened.res;
    std::uint64_t size = 0;
    IoResult r = files.file_size(fd, size);
    std::vector<std::byte> bytes;
    std::string error;
    if (!r.ok()) {
      error = "cannot stat: " + r.message();
    } else {
      bytes.resize(size);
      std::uint64_t done = 0;
      while (done < size) {
        const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(size - done, kReadChunkBytes));
        r = co_await files.read(fd, std::span(bytes.data() + done, chunk), done);
        if (!r.ok() || r.bytes() == 0) {
          error = r.ok() ? "file shrank while read" : "read failed: " + r.message();
          break;
        }
        done += r.bytes();
      }
    }
    (void)co_await files.close(fd);
    if (!error.empty()) throw WalRecoveryError(name, 0, error);
    co_return bytes;
  }

  // Reads every segment and the current snapshot; throws WalRecoveryError where recovery
  // must refuse. `window` bounds how far a torn write can reach.
  static Task<Scan> scan(std::shared_ptr<WalFiles> shared_files, const void* owner, int dir_fd,
                         std::string dir, std::size_t window) {
    WalFiles& files = *shared_files;
    Scan scan;
    std::vector<std::pair<std::uint64_t, std::string>> snapshots;
    for (const std::string& name : files.list(dir_fd)) {
      std::uint64_t number = 0;
      if (parse_numbered(name, "wal-", ".log", number)) {
        scan.segments.push_back(SegmentFile{number, name, {}, 0, 0, false, false, false});
      } else if (parse_numbered(name, "snapshot-", ".snap", number)) {
        snapshots.emplace_back(number, name);
      } else if (name.size() > 4 && name.ends_with(".tmp")) {
        scan.stale.push_back(name);
      }
    }
    std::sort(scan.segments.begin(), scan.segments.end(),
              [](const SegmentFile& a, const SegmentFile& b) { return a.seq < b.seq; });
    for (std::size_t i = 1; i < scan.segments.size(); ++i) {
      if (scan.segments[i].seq != scan.segments[i - 1].seq + 1) {
        throw WalRecoveryError(dir + "/" + segment_name(scan.segments[i - 1].seq + 1), 0,
                               "missing segment (" + scan.segments[i - 1].name + " is followed by " +
                                   scan.segments[i].name + ")");
      }
    }

    // Pass 1: read and check every record.
    std::vector<Decoded> records;
    for (std::size_t i = 0; i < scan.segments.size(); ++i) {
      SegmentFile& seg = scan.segments[i];
      seg.bytes = co_await read_whole(files, dir_fd, seg.name);
      const bool last = i + 1 == scan.segments.size();
      co_await read_segment(scan, seg, i, last, dir, window, records);
      if (!last) seg.bytes = {};  // Only the last segment's bytes are needed for repair.
    }
    if (!scan.segments.empty() && scan.segments.back().remove) {
      // Its header never became durable; the segment before it (if any) is sealed.
      scan.warnings.push_back("removing " + scan.segments.back().name +
                              ": a new segment whose header was never written");
      scan.stale.push_back(scan.segments.back().name);
      scan.segments.pop_back();
    }

    // Pass 2: replay. Only entries above the final snapshot's index are kept (see
    // docs/storage.md: this is what lets compaction drop whole segments).
    const Decoded* final_marker = nullptr;
    for (const Decoded& d : records) {
      if (d.type == WalRecordType::kSnapshot) final_marker = &d;
    }
    const LogIndex base = final_marker ? final_marker->marker.index : LogIndex{0};
    HardState hard;
    std::vector<LogEntry>& log = scan.state.entries;
    bool first_header = true;
    for (const Decoded& d : records) {
      const std::string where = dir + "/" + scan.segments[d.segment].name;
      switch (d.type) {
        case WalRecordType::kSegmentHeader:
          if (first_header) {
            first_header = false;
            if (d.header.seq != 1 && d.header.last_index > base) {
              throw WalRecoveryError(where, 0, "missing segment before it: the log it continues ends at " +
                                                   std::to_string(d.header.last_index.value) +
                                                   " but the snapshot covers only up to " +
                                                   std::to_string(base.value));
            }
            if (d.header.snapshot_index > base) {
              throw WalRecoveryError(where, 0, "missing segment: it follows a snapshot at " +
                                                   std::to_string(d.header.snapshot_index.value) +
                                                   " whose record is gone");
            }
          }
          hard = d.header.hard_state;
          break;
        case WalRecordType::kHardState:
          hard = d.hard_state;
          break;
        case WalRecordType::kEntries: {
          const std::uint64_t last = base.value + log.size();
          if (d.first.value > base.value + 1 && d.first.value > last + 1) {
            throw WalRecoveryError(where, d.offset, "entries start at index " +
                                                        std::to_string(d.first.value) +
                                                        " but the log ends at " + std::to_string(last));
          }
          const std::uint64_t keep = std::max(d.first.value, base.value + 1) - base.value - 1;
          if (keep < log.size()) log.resize(keep);
          for (std::size_t j = 0; j < d.entries.size(); ++j) {
            if (d.first.value + j > base.value) log.push_back(d.entries[j]);
          }
          break;
        }
        case WalRecordType::kSnapshot:
          if (d.marker.action == SnapshotLogAction::kDiscardLog) log.clear();
          break;
        case WalRecordType::kSeal:
          break;
      }
    }
    scan.state.hard_state = hard;
    scan.last_index = LogIndex{base.value + log.size()};

    // The snapshot the final marker names; every other snapshot file is stale.
    for (const auto& [number, name] : snapshots) {
      if (!final_marker || number != base.value) scan.stale.push_back(name);
    }
    if (final_marker) {
      const std::string name = snapshot_name(base);
      const std::string where = dir + "/" + name;
      const bool present = std::any_of(snapshots.begin(), snapshots.end(),
                                       [&](const auto& s) { return s.second == name; });
      if (!present) throw WalRecoveryError(where, 0, "the snapshot the log names is missing");
      scan.state.snapshot =
          co_await open_snapshot(shared_files, owner, dir_fd, name, final_marker->marker, where);
    }
    co_return scan;
  }

  static Task<void> read_segment(Scan& scan, SegmentFile& seg, std::size_t index, bool last,
                                 const std::string& dir, std::size_t window,
                                 std::vector<Decoded>& records) {
    const std::string where = dir + "/" + seg.name;
    const std::span<const std::byte> file = seg.bytes;
    std::size_t offset = 0;
    bool header_seen = false;
    for (;;) {
      WalRecordView view;
      const WalReadStatus status = read_wal_record(file, offset, view);
      if (status == WalReadStatus::kOk) {
        Decoded d;
        std::string why;
        if (!decode(view, d, why)) throw WalRecoveryError(where, offset, why);
        d.segment = index;
        d.offset = offset;
        if (!header_seen) {
          if (d.type != WalRecordType::kSegmentHeader) {
            throw WalRecoveryError(where, offset, "the segment does not start with its header");
          }
          if (d.header.seq != seg.seq) {
            throw WalRecoveryError(where, offset, "the header names segment " + std::to_string(d.header.seq));
          }
          header_seen = true;
        } else if (d.type == WalRecordType::kSegmentHeader) {
          throw WalRecoveryError(where, offset, "a second segment header");
        }
        if (d.type == WalRecordType::kEntries && !d.entries.empty()) {
          seg.max_index = std::max(seg.max_index, d.first.value + d.entries.size() - 1);
        }
        offset += view.size;
        const bool seal = d.type == WalRecordType::kSeal;
        if (seal && d.next_seq != seg.seq + 1) {
          throw WalRecoveryError(where, d.offset, "the seal names the wrong next segment");
        }
        records.push_back(std::move(d));
        if (seal) {
          seg.sealed = true;
          seg.end = offset;
          co_return;
        }
        continue;
      }
      // No valid record at `offset`: the end of the log, a torn tail, or corruption.
      seg.end = offset;
      if (!last) {
        throw WalRecoveryError(where, offset,
                               status == WalReadStatus::kEnd || status == WalReadStatus::kTruncated
                                   ? "the segment ends without its seal record (truncated?)"
                                   : std::string(to_string(status)));
      }
      std::size_t extent = offset + kWalRecordHeaderBytes;  // What the bad record spans.
      if (status == WalReadStatus::kBadPayload || status == WalReadStatus::kTruncated) {
        if (file.size() - offset >= kWalRecordHeaderBytes) {
          extent = offset + kWalRecordHeaderBytes + load_le(file.data() + offset, 4);
        }
      }
      // A torn write leaves zero sectors (or a short file) within one write of the last good
      // record; anything written beyond that reach is acknowledged data: corruption.
      const std::size_t reach = std::max(offset + window + kWalSectorBytes, extent);
      const bool beyond = reach < file.size() && !all_zero(file.subspan(reach));
      bool torn = false;
      if (status == WalReadStatus::kEnd) {
        torn = !all_zero(file.subspan(offset));
        if (!torn) {
          if (!header_seen) seg.remove = index > 0;
          if (!header_seen && index == 0) seg.remove = true;
          co_return;
        }
      } else if (status == WalReadStatus::kTruncated) {
        torn = true;
      } else {
        torn = has_zero_sector(file, offset, extent);
      }
      if (!torn || beyond) {
        throw WalRecoveryError(where, offset,
                               std::string(to_string(status)) +
                                   (torn ? " (data follows beyond the reach of a torn write)"
                                         : " (corrupt record, not a torn write)"));
      }
      if (!header_seen) {
        seg.remove = true;
        co_return;
      }
      seg.torn = true;
      scan.warnings.push_back("torn write at the end of " + where + ": discarding " +
                              std::to_string(file.size() - offset) + " bytes from offset " +
                              std::to_string(offset));
      co_return;
    }
  }

  // Opens the snapshot file `name`, checks its header against the log's record and its data
  // against the checksum (a piece at a time), and keeps it open for reading.
  static Task<SnapshotRecord> open_snapshot(std::shared_ptr<WalFiles> files, const void* owner,
                                            int dir_fd, std::string name, SnapshotMarker m,
                                            std::string where) {
    const IoResult opened = co_await files->open(dir_fd, name, O_RDONLY, 0);
    if (!opened.ok()) throw WalRecoveryError(where, 0, "cannot open: " + opened.message());
    const int fd = opened.res;
    std::string problem;
    std::uint64_t problem_at = 0;
    std::uint64_t size = 0;
    std::vector<std::byte> buf(kSnapshotHeaderBytes);
    IoResult r = files->file_size(fd, size);
    if (!r.ok()) {
      problem = "cannot stat: " + r.message();
    } else if (size < kSnapshotHeaderBytes) {
      problem = "shorter than its header";
    } else if (r = co_await files->read(fd, buf, 0); !r.ok() || r.bytes() != kSnapshotHeaderBytes) {
      problem = r.ok() ? "short read" : "read failed: " + r.message();
    } else {
      const std::byte* h = buf.data();
      const std::uint64_t length = load_le(h + 32, 8);
      if (load_le(h + 40, 4) != crc32c(std::span(h, 40))) {
        problem = "bad header checksum";
      } else if (load_le(h, 8) != kSnapshotMagic) {
        problem = "not a snapshot file";
      } else if (load_le(h + 8, 4) != kFormatVersion) {
        problem = "unknown format version", problem_at = 8;
      } else if (LogIndex{load_le(h + 16, 8)} != m.index || Term{load_le(h + 24, 8)} != m.term ||
                 length != m.length) {
        problem = "does not match the log's snapshot record", problem_at = 16;
      } else if (size - kSnapshotHeaderBytes != length) {
        problem = "holds " + std::to_string(size - kSnapshotHeaderBytes) +
                  " data bytes, its header says " + std::to_string(length);
        problem_at = kSnapshotHeaderBytes;
      } else {
        const std::uint64_t header_crc = load_le(h + 12, 4);
        buf.resize(std::min<std::uint64_t>(length, kSnapshotPieceBytes));  // h is gone now.
        std::uint32_t crc = 0;
        for (std::uint64_t at = 0; at < length && problem.empty();) {
          const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), length - at));
          r = co_await files->read(fd, std::span(buf.data(), n), kSnapshotHeaderBytes + at);
          if (!r.ok() || r.bytes() == 0) {
            problem = r.ok() ? "file shrank while read" : "read failed: " + r.message();
          } else {
            crc = crc32c(std::span(buf.data(), r.bytes()), crc);
            at += r.bytes();
          }
        }
        if (problem.empty() && (crc != m.crc || header_crc != m.crc)) {
          problem = "bad data checksum", problem_at = kSnapshotHeaderBytes;
        }
      }
    }
    if (!problem.empty()) {
      files->close_now(fd);
      throw WalRecoveryError(where, problem_at, problem);
    }
    auto file = std::make_shared<SnapshotFile>(owner, files, fd, where, m.index, m.term, m.length,
                                               m.crc, nullptr, std::string());
    co_return SnapshotRecord{m.index, m.term, SnapshotData(std::move(file))};
  }
};

// --- open, close ---

WalStorage::WalStorage(std::string dir, WalOptions options)
    : dir_(std::move(dir)), options_(std::move(options)), files_(options_.files) {
  if (!files_) files_ = std::make_shared<UringFiles>();
  URAFT_ASSERT(options_.segment_bytes >= 4096);
  URAFT_ASSERT(options_.group_bytes_max >= 4096);
  writer_idle_.set();
}

WalStorage::~WalStorage() {
  // Writes in flight belong to the writer task: close() must have waited for them.
  URAFT_ASSERT(!writer_running_);
  if (temporaries_) temporaries_->dir_fd = -1;
  if (!closed_) {
    if (segment_fd_ >= 0) files_->close_now(segment_fd_);
    if (dir_fd_ >= 0) files_->close_now(dir_fd_);
    if (lock_fd_ >= 0) files_->close_now(lock_fd_);
  }
}

void WalStorage::warn(std::string line) {
  if (options_.warn) {
    options_.warn(line);
  } else {
    std::fprintf(stderr, "uraft wal %s: %s\n", dir_.c_str(), line.c_str());
  }
  warnings_.push_back(std::move(line));
}

Task<std::unique_ptr<WalStorage>> WalStorage::open(std::string dir, WalOptions options) {
  std::unique_ptr<WalStorage> self(new WalStorage(dir, std::move(options)));
  WalFiles& files = *self->files_;
  const IoResult dir_fd = files.open_dir(dir);
  if (!dir_fd.ok()) throw WalRecoveryError(dir, 0, "cannot open the data directory: " + dir_fd.message());
  self->dir_fd_ = dir_fd.res;
  self->temporaries_ = std::make_shared<Temporaries>(Temporaries{self->files_, self->dir_fd_});
  std::string holder;
  const IoResult lock_fd = files.lock(self->dir_fd_, kLockName, holder);
  if (!lock_fd.ok()) {
    throw WalRecoveryError(dir + "/" + kLockName, 0,
                           lock_fd.error() == EWOULDBLOCK
                               ? "the data directory is in use by another process (pid " + holder + ")"
                               : "cannot lock: " + lock_fd.message());
  }
  self->lock_fd_ = lock_fd.res;

  Impl::Scan scan = co_await Impl::scan(self->files_, self.get(), self->dir_fd_, dir,
                                        self->options_.group_bytes_max);

  // Recovery accepted the directory: now repair it.
  for (std::string& w : scan.warnings) self->warn(std::move(w));
  if (!scan.segments.empty()) {
    Impl::SegmentFile& last = scan.segments.back();
    const IoResult opened = co_await files.open(self->dir_fd_, last.name, O_RDWR, 0);
    if (!opened.ok()) throw WalRecoveryError(dir + "/" + last.name, 0, "cannot open: " + opened.message());
    self->segment_fd_ = opened.res;
    if (last.torn || last.bytes.size() < self->options_.segment_bytes) {
      // Zero what the torn write left and give the segment back its full preallocation.
      if (last.torn) {
        if (const IoResult r = files.truncate(self->segment_fd_, last.end); !r.ok()) {
          throw WalRecoveryError(dir + "/" + last.name, last.end, "cannot truncate the torn tail: " + r.message());
        }
      }
      if (last.end < self->options_.segment_bytes) {
        const IoResult r = co_await files.fallocate(self->segment_fd_, 0, last.end,
                                                    self->options_.segment_bytes - last.end);
        if (!r.ok() && r.error() != ENOSPC) {
          throw WalRecoveryError(dir + "/" + last.name, last.end, "cannot preallocate: " + r.message());
        }
      }
      if (const IoResult r = co_await files.fdatasync(self->segment_fd_); !r.ok()) {
        throw WalRecoveryError(dir + "/" + last.name, 0, "fdatasync failed: " + r.message());
      }
    }
    self->write_offset_ = last.end;
    self->segment_sealed_ = last.sealed;
    for (const Impl::SegmentFile& s : scan.segments) self->segments_.push_back(Segment{s.seq, s.max_index});
  }
  for (const std::string& name : scan.stale) {
    if (const IoResult r = co_await files.unlink(self->dir_fd_, name); r.ok()) {
      self->warn("removed stale file " + name);
    }
  }
  if (!scan.stale.empty()) (void)co_await files.fsync(self->dir_fd_);

  self->hard_state_ = scan.state.hard_state;
  if (scan.state.snapshot) {
    self->snapshot_index_ = scan.state.snapshot->last_included_index;
    self->snapshot_term_ = scan.state.snapshot->last_included_term;
  }
  self->last_index_ = scan.last_index;
  self->wal_hard_state_ = self->hard_state_;
  self->wal_last_index_ = self->last_index_;
  self->wal_snapshot_index_ = self->snapshot_index_;
  self->recovered_ = std::move(scan.state);
  co_return self;
}

Task<void> WalStorage::close() {
  if (closed_) co_return;
  // A writer stalled on a full disk would wait forever: give up its writes.
  if (!write_problem_.empty()) writer_scope_.cancel();
  co_await writer_idle_.wait_uncancellable();
  co_await writer_scope_.join();
  closed_ = true;
  if (segment_fd_ >= 0) (void)co_await files_->close(std::exchange(segment_fd_, -1));
  temporaries_->dir_fd = -1;
  files_->close_now(std::exchange(dir_fd_, -1));
  files_->close_now(std::exchange(lock_fd_, -1));  // Releases the lock.
}

std::vector<std::string> WalStorage::segment_names() const {
  std::vector<std::string> names;
  for (const Segment& s : segments_) names.push_back(segment_name(s.seq));
  return names;
}

// --- the Storage interface ---

Task<RecoveredState> WalStorage::load() {
  URAFT_ASSERT(!closed_);
  if (recovered_) {
    RecoveredState state = std::move(*recovered_);
    recovered_.reset();
    co_return state;
  }
  while (writer_running_) co_await writer_idle_.wait();
  Impl::Scan scan = co_await Impl::scan(files_, this, dir_fd_, dir_, options_.group_bytes_max);
  co_return std::move(scan.state);
}

std::shared_ptr<WalStorage::Stage> WalStorage::queue_record(std::vector<std::byte> record,
                                                             std::uint64_t max_index) {
  URAFT_ASSERT(!closed_);
  recovered_.reset();
  ++stats_.records;
  if (stages_.empty() || stages_.back()->taken || stages_.back()->kind != Stage::Kind::kGroup ||
      stages_.back()->bytes.size() + record.size() > options_.group_bytes_max) {
    stages_.push_back(std::make_shared<Stage>());
  }
  Stage& stage = *stages_.back();
  if (stage.bytes.empty()) {
    stage.bytes = std::move(record);
  } else {
    stage.bytes.insert(stage.bytes.end(), record.begin(), record.end());
  }
  stage.max_index = std::max(stage.max_index, max_index);
  stage.hard_after = hard_state_;
  stage.last_after = last_index_;
  start_writer();
  return stages_.back();
}

Task<void> WalStorage::await_stage(std::shared_ptr<Stage> stage) {
  if (!stage->done) co_await stage->done_event.wait();
  if (!stage->error.empty()) throw WalWriteError(stage->error);
}

Task<void> WalStorage::save_hard_state(HardState state) {
  URAFT_ASSERT(state.current_term >= hard_state_.current_term);
  if (failed_) throw WalWriteError(write_problem_);
  hard_state_ = state;
  std::vector<std::byte> payload;
  encode_hard_state(payload, state);
  std::vector<std::byte> record;
  append_wal_record(record, WalRecordType::kHardState, payload);
  co_await await_stage(queue_record(std::move(record), 0));
}

Task<void> WalStorage::append(LogIndex first, std::vector<LogEntry> entries) {
  URAFT_ASSERT(first > snapshot_index_);
  URAFT_ASSERT(first.value <= last_index_.value + 1);
  if (failed_) throw WalWriteError(write_problem_);
  std::size_t bytes = 12;
  for (const LogEntry& e : entries) bytes += 12 + e.command.size();
  std::vector<std::byte> record;
  record.reserve(kWalRecordHeaderBytes + bytes);
  {
    std::vector<std::byte> payload;
    payload.reserve(bytes);
    put(payload, first.value, 8);
    put(payload, entries.size(), 4);
    for (const LogEntry& e : entries) {
      put(payload, e.term.value, 8);
      put(payload, e.command.size(), 4);
      const auto command = as_bytes(e.command);
      payload.insert(payload.end(), command.begin(), command.end());
    }
    URAFT_ASSERT(payload.size() == bytes);
    append_wal_record(record, WalRecordType::kEntries, payload);
  }
  last_index_ = LogIndex{first.value + entries.size() - 1};
  const std::uint64_t max_index = entries.empty() ? 0 : last_index_.value;
  co_await await_stage(queue_record(std::move(record), max_index));
}

Task<void> WalStorage::save_snapshot(SnapshotRecord snapshot, SnapshotLogAction action) {
  const LogIndex index = snapshot.last_included_index;
  URAFT_ASSERT(index > snapshot_index_);
  if (failed_) throw WalWriteError(write_problem_);
  recovered_.reset();
  if (action == SnapshotLogAction::kDiscardLog || index >= last_index_) last_index_ = index;
  snapshot_index_ = index;
  snapshot_term_ = snapshot.last_included_term;
  auto stage = std::make_shared<Stage>();
  stage->kind = Stage::Kind::kSnapshot;
  stage->snapshot = std::move(snapshot);
  stage->action = action;
  stage->hard_after = hard_state_;
  stage->last_after = last_index_;
  stages_.push_back(stage);
  start_writer();
  co_await await_stage(std::move(stage));
}

// --- the writer ---

void WalStorage::start_writer() {
  if (writer_running_) return;
  writer_running_ = true;
  writer_idle_.reset();
  writer_scope_.spawn(run_writer(this));
}

Task<void> WalStorage::run_writer(WalStorage* self) {
  while (!self->stages_.empty()) {
    std::shared_ptr<Stage> stage = self->stages_.front();
    stage->taken = true;
    try {
      if (self->failed_) throw WalWriteError(self->write_problem_);
      if (stage->kind == Stage::Kind::kGroup) {
        co_await self->write_group(*stage);
      } else {
        co_await self->write_snapshot(*stage);
      }
    } catch (const WalWriteError& e) {
      stage->error = e.what();
    } catch (const Cancelled&) {
      self->fail("closed while writes were stopped: " + self->write_problem_);
      stage->error = self->write_problem_;
    } catch (const std::exception& e) {
      self->fail(e.what());
      stage->error = self->write_problem_;
    }
    self->stages_.pop_front();
    stage->done = true;
    stage->done_event.set();
  }
  self->writer_running_ = false;
  self->writer_idle_.set();
}

void WalStorage::fail(std::string reason) {
  if (failed_) return;
  failed_ = true;
  write_problem_ = std::move(reason);
  warn("writes stopped for good: " + write_problem_);
}

Task<void> WalStorage::write_group(Stage& stage) {
  co_await write_records(std::move(stage.bytes), stage.max_index);
  wal_hard_state_ = stage.hard_after;
  wal_last_index_ = stage.last_after;
  ++stats_.groups;
}

Task<void> WalStorage::write_records(std::vector<std::byte> bytes, std::uint64_t max_index) {
  const bool full = write_offset_ + bytes.size() + kSealBytes > options_.segment_bytes &&
                    write_offset_ > segment_data_start_;
  if (segments_.empty() || segment_sealed_ || full) co_await rotate_segment();
  const std::string name = segment_name(segments_.back().seq);
  const std::uint64_t size = bytes.size();
  co_await write_all(segment_fd_, std::move(bytes), write_offset_, name);
  co_await sync(segment_fd_, true, name);
  write_offset_ += size;
  stats_.bytes += size;
  segments_.back().max_index = std::max(segments_.back().max_index, max_index);
}

Task<void> WalStorage::rotate_segment() {
  std::uint64_t seq = 1;
  if (!segments_.empty()) {
    seq = segments_.back().seq + 1;
    const std::string name = segment_name(segments_.back().seq);
    if (!segment_sealed_) {
      std::vector<std::byte> payload;
      put(payload, seq, 8);
      std::vector<std::byte> seal;
      append_wal_record(seal, WalRecordType::kSeal, payload);
      co_await write_all(segment_fd_, std::move(seal), write_offset_, name);
      co_await sync(segment_fd_, true, name);
      write_offset_ += kSealBytes;
      segment_sealed_ = true;
    }
    (void)co_await files_->close(std::exchange(segment_fd_, -1));
  }
  co_await create_segment(seq);
}

Task<void> WalStorage::create_segment(std::uint64_t seq) {
  const std::string name = segment_name(seq);
  int fd = -1;
  for (;;) {
    const IoResult r = co_await files_->open(dir_fd_, name, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (r.ok()) {
      fd = r.res;
      break;
    }
    if (r.error() != ENOSPC) throw WalWriteError("cannot create " + dir_ + "/" + name + ": " + r.message());
    co_await stall_on_no_space(name);
  }
  segment_fd_ = fd;
  for (;;) {
    const IoResult r = co_await files_->fallocate(fd, 0, 0, options_.segment_bytes);
    if (r.ok()) break;
    if (r.error() != ENOSPC) throw WalWriteError("cannot preallocate " + dir_ + "/" + name + ": " + r.message());
    co_await stall_on_no_space(name);
  }
  resume_after_stall();
  const SegmentHeader header{seq, wal_hard_state_, wal_last_index_, wal_snapshot_index_};
  std::vector<std::byte> record = segment_header_record(header);
  const std::uint64_t size = record.size();
  co_await write_all(fd, std::move(record), 0, name);
  co_await sync(fd, true, name);
  co_await sync(dir_fd_, false, "the data directory");
  segments_.push_back(Segment{seq, 0});
  write_offset_ = segment_data_start_ = size;
  segment_sealed_ = false;
  ++stats_.segments_created;
}

Task<void> WalStorage::stall_on_no_space(std::string what) {
  if (write_problem_.empty()) {
    write_problem_ = "no space left on device writing " + dir_ + "/" + what + "; retrying";
    ++stats_.no_space_stalls;
    warn("writes stopped: " + write_problem_);
  }
  co_await sleep_for(options_.no_space_retry_interval);
}

void WalStorage::resume_after_stall() {
  if (write_problem_.empty() || failed_) return;
  write_problem_.clear();
  warn("writes resumed: space is available again");
}

Task<void> WalStorage::write_all(int fd, std::vector<std::byte> bytes, std::uint64_t offset,
                                 std::string what) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const IoResult r = co_await files_->write(fd, std::span(bytes).subspan(done), offset + done);
    if (r.ok() && r.bytes() > 0) {
      done += r.bytes();
      continue;
    }
    if (r.error() == ENOSPC) {
      co_await stall_on_no_space(what);
      continue;
    }
    fail("write to " + dir_ + "/" + what + " failed: " + (r.ok() ? "no progress" : r.message()));
    throw WalWriteError(write_problem_);
  }
  resume_after_stall();
}

Task<void> WalStorage::sync(int fd, bool data_only, std::string what) {
  const IoResult r = data_only ? co_await files_->fdatasync(fd) : co_await files_->fsync(fd);
  if (r.ok()) co_return;
  // After a failed sync the kernel may have dropped the dirty pages: nothing written since
  // the last good sync can be trusted, so writes stop until the directory is reopened.
  fail(std::string(data_only ? "fdatasync" : "fsync") + " of " + dir_ + "/" + what +
       " failed: " + r.message());
  throw WalWriteError(write_problem_);
}

std::unique_ptr<SnapshotSink> WalStorage::snapshot_sink(LogIndex index, Term term) {
  return std::make_unique<SnapshotFileSink>(this, files_, dir_, index, term,
                                            temporary_name(index), temporaries_);
}

std::string WalStorage::temporary_name(LogIndex index) {
  char buf[80];
  std::snprintf(buf, sizeof buf, "snapshot-%020" PRIu64 "-%" PRIu64 ".tmp", index.value,
                ++temporaries_made_);
  return buf;
}

Task<SnapshotData> WalStorage::copy_snapshot(const SnapshotRecord& s) {
  const std::string tmp = temporary_name(s.last_included_index);
  int fd = -1;
  for (;;) {
    const IoResult r = co_await files_->open(dir_fd_, tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (r.ok()) {
      fd = r.res;
      break;
    }
    if (r.error() != ENOSPC) throw WalWriteError("cannot create " + dir_ + "/" + tmp + ": " + r.message());
    co_await stall_on_no_space(tmp);
  }
  try {
    co_await write_all(fd, snapshot_header(s.last_included_index, s.last_included_term,
                                           s.data.size(), s.data.crc()),
                       0, tmp);
    for (std::uint64_t at = 0; at < s.data.size(); at += kSnapshotPieceBytes) {
      const std::string piece = s.data.read(at, kSnapshotPieceBytes);
      const auto bytes = as_bytes(piece);
      co_await write_all(fd, std::vector<std::byte>(bytes.begin(), bytes.end()),
                         kSnapshotHeaderBytes + at, tmp);
    }
  } catch (...) {
    files_->close_now(fd);
    temporaries_->remove(tmp);
    throw;
  }
  co_return SnapshotData(std::make_shared<SnapshotFile>(
      this, files_, fd, dir_ + "/" + tmp, s.last_included_index, s.last_included_term,
      s.data.size(), s.data.crc(), temporaries_, tmp));
}

Task<void> WalStorage::write_snapshot(Stage& stage) {
  SnapshotRecord& s = *stage.snapshot;
  const std::string name = snapshot_name(s.last_included_index);
  // 1. The file, whole and durable, under a temporary name: the one a sink of ours wrote
  //    (a received or a service's snapshot), or a copy of bytes from elsewhere.
  const SnapshotFile* own = SnapshotFile::of(s.data, this, s.last_included_index, s.last_included_term);
  if (own == nullptr) {
    s.data = co_await copy_snapshot(s);
    own = SnapshotFile::of(s.data, this, s.last_included_index, s.last_included_term);
  }
  const SnapshotFile& file = *own;
  co_await sync(file.fd(), false, file.temporary());
  // 2. Renamed into place, and the rename durable.
  if (const IoResult r = co_await files_->rename(dir_fd_, file.temporary(), name); !r.ok()) {
    fail("cannot rename " + dir_ + "/" + file.temporary() + ": " + r.message());
    throw WalWriteError(write_problem_);
  }
  file.adopted();
  co_await sync(dir_fd_, false, "the data directory");
  // 3. The log's record that makes it current. Until it is durable, recovery ignores the file.
  std::vector<std::byte> payload;
  put(payload, s.last_included_index.value, 8);
  put(payload, s.last_included_term.value, 8);
  put(payload, static_cast<std::uint64_t>(stage.action), 1);
  put(payload, s.data.size(), 8);
  put(payload, s.data.crc(), 4);
  std::vector<std::byte> record;
  append_wal_record(record, WalRecordType::kSnapshot, payload);
  co_await write_records(std::move(record), 0);
  ++stats_.snapshots;
  const LogIndex previous = wal_snapshot_index_;
  wal_snapshot_index_ = s.last_included_index;
  wal_hard_state_ = stage.hard_after;
  wal_last_index_ = stage.last_after;
  // 4. The previous snapshot and the segments the new one makes obsolete go.
  if (previous > LogIndex{0}) (void)co_await files_->unlink(dir_fd_, snapshot_name(previous));
  co_await compact(s.last_included_index);
}

Task<void> WalStorage::compact(LogIndex snapshot_index) {
  // Whole segments before the newest whose entries the snapshot covers: every record in them
  // is superseded (the newest segment's header carries the hard state forward).
  bool removed = false;
  while (segments_.size() > 1 && segments_.front().max_index <= snapshot_index.value) {
    const std::string name = segment_name(segments_.front().seq);
    const IoResult r = co_await files_->unlink(dir_fd_, name);
    if (!r.ok() && r.error() != ENOENT) break;  // Left for the next compaction.
    segments_.pop_front();
    ++stats_.segments_removed;
    removed = true;
  }
  if (removed) (void)co_await files_->fsync(dir_fd_);
}

}  // namespace uraft
