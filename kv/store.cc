#include "kv/store.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "core/assert.h"
#include "kv/commands.h"
#include "kv/resp.h"
#include "net/codec.h"
#include "net/crc32c.h"
#include "net/little_endian.h"
#include "net/varint.h"

namespace uraft::kv {

namespace {

constexpr std::size_t kSnapshotHeaderBytes = 4 + 1;  // Magic, version.
constexpr std::size_t kSnapshotCrcBytes = 4;
static_assert(kSnapshotMagic.size() == 4);

// Redis's overflow test for INCRBY and friends.
bool add_overflows(std::int64_t value, std::int64_t delta) noexcept {
  return (delta < 0 && value < 0 && delta < std::numeric_limits<std::int64_t>::min() - value) ||
         (delta > 0 && value > 0 && delta > std::numeric_limits<std::int64_t>::max() - value);
}

void append_not_replicated(std::string& out, std::string_view name) {
  std::string m = "ERR '";
  m += name;
  m += "' is answered by the node, not through the log";
  append_error(out, m);
}

// The command `argv` names, if it exists and has a valid number of arguments; otherwise
// appends the error reply (empty command, unknown command, wrong arity) and returns nullptr.
const CommandSpec* checked_command(std::span<const std::string_view> argv, std::string& out) {
  if (argv.empty()) {
    append_error(out, "ERR empty command");
    return nullptr;
  }
  const CommandSpec* spec = find_command(argv[0]);
  if (spec == nullptr) {
    append_unknown_command(out, argv);
    return nullptr;
  }
  if (!arity_ok(*spec, argv.size())) {
    append_wrong_arity(out, spec->name);
    return nullptr;
  }
  return spec;
}

}  // namespace

std::string_view to_string(SnapshotError e) noexcept {
  switch (e) {
    case SnapshotError::kTooShort: return "too short";
    case SnapshotError::kBadMagic: return "bad magic";
    case SnapshotError::kUnknownVersion: return "unknown version";
    case SnapshotError::kBadChecksum: return "bad checksum";
    case SnapshotError::kTruncated: return "truncated";
    case SnapshotError::kOverlongVarint: return "overlong varint";
    case SnapshotError::kLengthExceedsInput: return "length exceeds input";
    case SnapshotError::kValueTooLong: return "value too long";
    case SnapshotError::kKeysOutOfOrder: return "keys out of order";
    case SnapshotError::kTrailingBytes: return "trailing bytes";
  }
  return "unknown snapshot error";
}

Store::Store() = default;

void Store::set_value(std::string_view key, std::string_view value) {
  const auto it = map_.find(key);
  if (it == map_.end()) {
    map_.emplace(std::string(key), std::string(value));
    data_bytes_ += key.size() + value.size();
  } else {
    data_bytes_ -= it->second.size();
    it->second.assign(value);
    data_bytes_ += value.size();
  }
}

bool Store::erase(std::string_view key) {
  const auto it = map_.find(key);
  if (it == map_.end()) return false;
  data_bytes_ -= it->first.size() + it->second.size();
  map_.erase(it);
  return true;
}

void Store::clear() {
  map_.clear();
  data_bytes_ = 0;
}

void Store::increment(std::string_view key, std::int64_t delta, std::string& out) {
  std::int64_t value = 0;
  const std::string* old = find(key);
  if (old != nullptr && !parse_int64(*old, value)) {
    append_error(out, kErrNotInteger);
    return;
  }
  if (add_overflows(value, delta)) {
    append_error(out, kErrOverflow);
    return;
  }
  value += delta;
  set_value(key, std::to_string(value));
  append_integer(out, value);
}

const std::string* Store::find(std::string_view key) const {
  const auto it = map_.find(key);
  return it == map_.end() ? nullptr : &it->second;
}

StoreStats Store::stats() const noexcept {
  return StoreStats{map_.size(), data_bytes_, commands_applied_};
}

void Store::apply(std::span<const std::string_view> argv, std::string& out) {
  ++commands_applied_;
  const CommandSpec* spec = checked_command(argv, out);
  if (spec == nullptr) return;
  if (spec->kind == CommandKind::kRead) {
    read(argv, out);
    return;
  }
  if (spec->kind == CommandKind::kLocal) {
    append_not_replicated(out, spec->name);
    return;
  }
  if (!validate_write(*spec, argv, out)) return;
  switch (spec->id) {
    case CommandId::kSet: {
      bool nx = false, xx = false, get = false;
      for (std::size_t i = 3; i < argv.size(); ++i) {
        // validate_write passed: only NX, XX, GET and KEEPTTL (a no-op: nothing expires).
        if (equals_ignore_case(argv[i], "nx")) nx = true;
        if (equals_ignore_case(argv[i], "xx")) xx = true;
        if (equals_ignore_case(argv[i], "get")) get = true;
      }
      const std::string* old = find(argv[1]);
      if (get) {
        if (old == nullptr) {
          append_null_bulk(out);
        } else {
          append_bulk(out, *old);
        }
      }
      const bool write = !((nx && old != nullptr) || (xx && old == nullptr));
      if (!get) out += write ? kReplyOk : kReplyNullBulk;
      // The reply above copied the old value before it is overwritten.
      if (write) set_value(argv[1], argv[2]);
      return;
    }
    case CommandId::kDel: {
      std::int64_t removed = 0;
      for (std::size_t i = 1; i < argv.size(); ++i) removed += erase(argv[i]) ? 1 : 0;
      append_integer(out, removed);
      return;
    }
    case CommandId::kAppend: {
      const std::string* old = find(argv[1]);
      const std::size_t old_size = old == nullptr ? 0 : old->size();
      if (old_size + argv[2].size() > kBulkBytesMax) {
        append_error(out, kErrStringTooLong);
        return;
      }
      if (old == nullptr) {
        set_value(argv[1], argv[2]);
      } else {
        map_.find(argv[1])->second.append(argv[2]);
        data_bytes_ += argv[2].size();
      }
      append_integer(out, static_cast<std::int64_t>(old_size + argv[2].size()));
      return;
    }
    case CommandId::kIncr:
      increment(argv[1], 1, out);
      return;
    case CommandId::kDecr:
      increment(argv[1], -1, out);
      return;
    case CommandId::kIncrby:
    case CommandId::kDecrby: {
      std::int64_t delta = 0;
      const bool ok = parse_int64(argv[2], delta);
      URAFT_ASSERT(ok);  // validate_write checked it.
      // validate_write refused DECRBY of INT64_MIN, whose negation overflows.
      increment(argv[1], spec->id == CommandId::kDecrby ? -delta : delta, out);
      return;
    }
    case CommandId::kMset:
      for (std::size_t i = 1; i + 1 < argv.size(); i += 2) set_value(argv[i], argv[i + 1]);
      out += kReplyOk;
      return;
    case CommandId::kFlushall:
      clear();
      out += kReplyOk;
      return;
    default:
      break;
  }
  URAFT_ASSERT(spec->kind != CommandKind::kWrite);
}

void Store::read(std::span<const std::string_view> argv, std::string& out) const {
  const CommandSpec* spec = checked_command(argv, out);
  if (spec == nullptr) return;
  if (spec->kind != CommandKind::kRead) {
    std::string m = "ERR '";
    m += spec->name;
    m += "' is not a read command";
    append_error(out, m);
    return;
  }
  switch (spec->id) {
    case CommandId::kGet: {
      const std::string* v = find(argv[1]);
      if (v == nullptr) {
        append_null_bulk(out);
      } else {
        append_bulk(out, *v);
      }
      return;
    }
    case CommandId::kExists: {
      std::int64_t n = 0;
      for (std::size_t i = 1; i < argv.size(); ++i) n += find(argv[i]) != nullptr ? 1 : 0;
      append_integer(out, n);
      return;
    }
    case CommandId::kMget:
      append_array_header(out, argv.size() - 1);
      for (std::size_t i = 1; i < argv.size(); ++i) {
        const std::string* v = find(argv[i]);
        if (v == nullptr) {
          append_null_bulk(out);
        } else {
          append_bulk(out, *v);
        }
      }
      return;
    case CommandId::kStrlen: {
      const std::string* v = find(argv[1]);
      append_integer(out, v == nullptr ? 0 : static_cast<std::int64_t>(v->size()));
      return;
    }
    case CommandId::kDbsize:
      append_integer(out, static_cast<std::int64_t>(map_.size()));
      return;
    default:
      break;
  }
  URAFT_ASSERT(spec->kind != CommandKind::kRead);
}

void Store::snapshot(const std::function<void(std::string_view)>& out, std::size_t piece) const {
  std::vector<const Map::value_type*> entries;
  entries.reserve(map_.size());
  for (const auto& kv : map_) entries.push_back(&kv);
  std::sort(entries.begin(), entries.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  std::string buf;
  buf.reserve(piece + 2 * kVarintBytesMax);
  std::uint32_t crc = 0;
  const auto flush = [&] {
    crc = crc32c(byte_span(buf), crc);
    out(buf);
    buf.clear();
  };
  buf += kSnapshotMagic;
  buf += static_cast<char>(kSnapshotVersion);
  put_varint(buf, entries.size());
  for (const auto* e : entries) {
    put_varint(buf, e->first.size());
    buf += e->first;
    put_varint(buf, e->second.size());
    buf += e->second;
    if (buf.size() >= piece) flush();
  }
  flush();
  char crc_bytes[kSnapshotCrcBytes];
  store_le(crc_bytes, crc, kSnapshotCrcBytes);
  out(std::string_view(crc_bytes, kSnapshotCrcBytes));
}

void Store::snapshot(std::string& out) const {
  out.reserve(out.size() + kSnapshotHeaderBytes + kVarintBytesMax + data_bytes_ + map_.size() * 4 +
              kSnapshotCrcBytes);
  snapshot([&out](std::string_view piece) { out += piece; });
}

std::string Store::snapshot() const {
  std::string out;
  snapshot(out);
  return out;
}

std::optional<SnapshotError> Store::restore(std::string_view bytes) {
  return restore(bytes.size(), [bytes](std::uint64_t offset, std::span<char> out) {
    std::copy_n(bytes.data() + offset, out.size(), out.data());
  });
}

namespace {

// The snapshot's bytes before its checksum, a piece at a time, with what is needed next in
// memory (a piece, or one whole key or value).
class PieceReader {
 public:
  PieceReader(const SnapshotReader& read, std::uint64_t end, std::uint64_t start)
      : read_(read), end_(end), next_(start) {}
  std::uint64_t remaining() const noexcept { return buf_.size() - pos_ + (end_ - next_); }
  // The next `n` bytes (n <= remaining()), valid until the next call.
  std::string_view peek(std::size_t n) {
    if (buf_.size() - pos_ < n) {
      buf_.erase(0, pos_);
      pos_ = 0;
      const std::size_t want = static_cast<std::size_t>(
          std::min<std::uint64_t>(std::max(n - buf_.size(), kPieceBytes), end_ - next_));
      const std::size_t had = buf_.size();
      buf_.resize(had + want);
      read_(next_, std::span(buf_.data() + had, want));
      next_ += want;
    }
    return std::string_view(buf_).substr(pos_, n);
  }
  void skip(std::size_t n) noexcept { pos_ += n; }

 private:
  static constexpr std::size_t kPieceBytes = std::size_t{1} << 20;
  const SnapshotReader& read_;
  std::uint64_t end_;
  std::uint64_t next_;
  std::string buf_;
  std::size_t pos_ = 0;
};

}  // namespace

std::optional<SnapshotError> Store::restore(std::uint64_t size, const SnapshotReader& read) {
  if (size < kSnapshotHeaderBytes + 1 + kSnapshotCrcBytes) return SnapshotError::kTooShort;
  const std::uint64_t covered = size - kSnapshotCrcBytes;
  {
    // First the checksum over everything before it, so corrupt bytes are named as such.
    PieceReader all(read, size, 0);
    const std::string_view header = all.peek(kSnapshotHeaderBytes);
    if (header.substr(0, 4) != kSnapshotMagic) return SnapshotError::kBadMagic;
    if (static_cast<std::uint8_t>(header[4]) != kSnapshotVersion) return SnapshotError::kUnknownVersion;
    std::uint32_t crc = 0;
    for (std::uint64_t left = covered; left > 0;) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, 1 << 20));
      crc = crc32c(byte_span(all.peek(n)), crc);
      all.skip(n);
      left -= n;
    }
    const auto stored = static_cast<std::uint32_t>(
        load_le(byte_span(all.peek(kSnapshotCrcBytes)).data(), kSnapshotCrcBytes));
    if (crc != stored) return SnapshotError::kBadChecksum;
  }

  PieceReader in(read, covered, kSnapshotHeaderBytes);
  SnapshotError error = SnapshotError::kTruncated;
  // Reads a varint; false (with `error` set) if there is none.
  auto read_varint = [&](std::uint64_t& v) {
    const std::string_view next =
        in.peek(static_cast<std::size_t>(std::min<std::uint64_t>(in.remaining(), kVarintBytesMax)));
    const VarintDecoded d = decode_varint(byte_span(next));
    if (d.status != VarintStatus::kOk) {
      error = d.status == VarintStatus::kTruncated ? SnapshotError::kTruncated
                                                   : SnapshotError::kOverlongVarint;
      return false;
    }
    v = d.value;
    in.skip(d.bytes);
    return true;
  };
  // Reads a length-prefixed string.
  auto read_string = [&](std::string& s) {
    std::uint64_t n = 0;
    if (!read_varint(n)) return false;
    if (n > kBulkBytesMax) {
      error = SnapshotError::kValueTooLong;
      return false;
    }
    if (n > in.remaining()) {
      error = SnapshotError::kLengthExceedsInput;
      return false;
    }
    s.assign(in.peek(static_cast<std::size_t>(n)));
    in.skip(static_cast<std::size_t>(n));
    return true;
  };

  std::uint64_t count = 0;
  if (!read_varint(count)) return error;
  // Each pair takes at least two bytes (two zero lengths): no reservation beyond the input.
  if (count > in.remaining() / 2) return SnapshotError::kLengthExceedsInput;
  Map map;
  map.reserve(count);
  std::size_t data_bytes = 0;
  std::string previous, key, value;
  for (std::uint64_t i = 0; i < count; ++i) {
    if (!read_string(key) || !read_string(value)) return error;
    if (i > 0 && !(previous < key)) return SnapshotError::kKeysOutOfOrder;
    previous = key;
    data_bytes += key.size() + value.size();
    map.emplace(key, std::move(value));
  }
  if (in.remaining() != 0) return SnapshotError::kTrailingBytes;
  URAFT_ASSERT(map.size() == count);
  map_.swap(map);
  data_bytes_ = data_bytes;
  commands_applied_ = 0;
  return std::nullopt;
}

}  // namespace uraft::kv
