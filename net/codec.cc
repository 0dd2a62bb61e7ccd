#include "net/codec.h"

#include <concepts>
#include <limits>
#include <tuple>
#include <type_traits>
#include <utility>

#include "core/assert.h"
#include "net/varint.h"

namespace uraft {
namespace {

template <MessageType kType, typename M>
constexpr bool kWireTypeIs =
    std::is_same_v<std::variant_alternative_t<static_cast<std::size_t>(kType), Message>, M>;

static_assert(kMessageTypeCount == 10, "a new Message alternative needs a MessageType");
static_assert(kWireTypeIs<MessageType::kRequestVoteArgs, RequestVoteArgs>);
static_assert(kWireTypeIs<MessageType::kRequestVoteReply, RequestVoteReply>);
static_assert(kWireTypeIs<MessageType::kAppendEntriesArgs, AppendEntriesArgs>);
static_assert(kWireTypeIs<MessageType::kAppendEntriesReply, AppendEntriesReply>);
static_assert(kWireTypeIs<MessageType::kInstallSnapshotArgs, InstallSnapshotArgs>);
static_assert(kWireTypeIs<MessageType::kInstallSnapshotReply, InstallSnapshotReply>);
static_assert(kWireTypeIs<MessageType::kClientRequest, ClientRequest>);
static_assert(kWireTypeIs<MessageType::kClientReply, ClientReply>);
static_assert(kWireTypeIs<MessageType::kTimeoutNowArgs, TimeoutNowArgs>);
static_assert(kWireTypeIs<MessageType::kTimeoutNowReply, TimeoutNowReply>);

// An entry takes at least a one-byte term and a one-byte length: the bound on a claimed count.
constexpr std::size_t kLogEntryBytesMin = 2;

template <typename M, typename T>
concept Is = std::same_as<std::remove_const_t<M>, T>;

// Each struct's fields in wire order, listed once for both directions (M may be const).
template <Is<LogEntry> M> auto fields(M& m) { return std::tie(m.term, m.command); }
template <Is<RequestVoteArgs> M> auto fields(M& m) {
  return std::tie(m.term, m.candidate_id, m.last_log_index, m.last_log_term, m.pre_vote,
                  m.transfer);
}
template <Is<RequestVoteReply> M> auto fields(M& m) { return std::tie(m.term, m.vote_granted); }
template <Is<AppendEntriesArgs> M> auto fields(M& m) {
  return std::tie(m.term, m.leader_id, m.prev_log_index, m.prev_log_term, m.entries,
                  m.leader_commit);
}
template <Is<AppendEntriesReply> M> auto fields(M& m) {
  return std::tie(m.term, m.success, m.conflict_term, m.conflict_index, m.log_length,
                  m.match_index);
}
template <Is<InstallSnapshotArgs> M> auto fields(M& m) {
  return std::tie(m.term, m.leader_id, m.last_included_index, m.last_included_term, m.offset,
                  m.data, m.done, m.crc);
}
template <Is<InstallSnapshotReply> M> auto fields(M& m) {
  return std::tie(m.term, m.next_offset, m.installed);
}
template <Is<TimeoutNowArgs> M> auto fields(M& m) {
  return std::tie(m.term, m.leader_id, m.last_log_index);
}
template <Is<TimeoutNowReply> M> auto fields(M& m) { return std::tie(m.term); }
template <Is<ClientRequest> M> auto fields(M& m) { return std::tie(m.payload); }
template <Is<ClientReply> M> auto fields(M& m) {
  return std::tie(m.status, m.leader_hint, m.payload);
}

template <typename M>
concept HasFields = requires(M& m) { fields(m); };

// Every scalar travels as a varint: strong integers, bools and enums widen to 64 bits.
class Writer {
 public:
  explicit Writer(std::string& out) noexcept : out_(out) {}

  void put(std::uint64_t v) { put_varint(out_, v); }
  void put(bool b) { put(std::uint64_t{b}); }
  void put(std::uint32_t v) { put(std::uint64_t{v}); }
  void put(ClientReply::Status s) { put(static_cast<std::uint64_t>(s)); }
  template <typename Tag, typename Rep>
  void put(StrongInt<Tag, Rep> v) {
    put(static_cast<std::uint64_t>(v.value));
  }

  void put(const std::string& s) {
    put(static_cast<std::uint64_t>(s.size()));
    out_.append(s);
  }

  void put(const std::vector<LogEntry>& entries) {
    std::size_t bytes = kVarintBytesMax;  // One reservation for the whole batch.
    for (const LogEntry& e : entries) bytes += 2 * kVarintBytesMax + e.command.size();
    out_.reserve(out_.size() + bytes);
    put(static_cast<std::uint64_t>(entries.size()));
    for (const LogEntry& e : entries) put(e);
  }

  template <HasFields M>
  void put(const M& m) {
    std::apply([this](const auto&... f) { (this->put(f), ...); }, fields(m));
  }

 private:
  std::string& out_;
};

// Reads fields from the front of `in_`; the first failure sticks and stops the rest.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) noexcept : in_(in) {}

  bool get(std::uint64_t& v) {
    const VarintDecoded d = decode_varint(in_.subspan(pos_));
    if (d.status == VarintStatus::kTruncated) return fail(DecodeError::kTruncated);
    if (d.status == VarintStatus::kOverlong) return fail(DecodeError::kOverlongVarint);
    v = d.value;
    pos_ += d.bytes;
    return true;
  }

  bool get(bool& b) {
    std::uint64_t raw = 0;
    if (!get_at_most(raw, 1)) return false;
    b = raw == 1;
    return true;
  }

  bool get(std::uint32_t& v) {
    std::uint64_t raw = 0;
    if (!get_at_most(raw, UINT32_MAX)) return false;
    v = static_cast<std::uint32_t>(raw);
    return true;
  }

  bool get(ClientReply::Status& s) {
    std::uint64_t raw = 0;
    if (!get_at_most(raw, static_cast<std::uint64_t>(ClientReply::kStatusLast))) return false;
    s = static_cast<ClientReply::Status>(raw);
    return true;
  }

  template <typename Tag, typename Rep>
  bool get(StrongInt<Tag, Rep>& v) {
    std::uint64_t raw = 0;
    if (!get_at_most(raw, std::numeric_limits<Rep>::max())) return false;
    v = StrongInt<Tag, Rep>{static_cast<Rep>(raw)};
    return true;
  }

  bool get(std::string& s) {
    std::uint64_t size = 0;
    if (!get(size)) return false;
    if (size > remaining()) return fail(DecodeError::kLengthExceedsInput);
    s.assign(reinterpret_cast<const char*>(in_.data() + pos_), size);
    pos_ += size;
    return true;
  }

  bool get(std::vector<LogEntry>& entries) {
    std::uint64_t count = 0;
    if (!get(count)) return false;
    if (count > remaining() / kLogEntryBytesMin) return fail(DecodeError::kLengthExceedsInput);
    entries.clear();
    entries.reserve(count);
    for (std::uint64_t i = 0; i < count; ++i) {
      if (!get(entries.emplace_back())) return false;
    }
    return true;
  }

  template <HasFields M>
  bool get(M& m) {
    return std::apply([this](auto&... f) { return (this->get(f) && ...); }, fields(m));
  }

  // The outcome once the last field is read: every byte must have been used.
  [[nodiscard]] std::optional<DecodeError> finish() const noexcept {
    URAFT_ASSERT(pos_ <= in_.size());
    if (!error_ && pos_ != in_.size()) return DecodeError::kTrailingBytes;
    return error_;
  }

 private:
  [[nodiscard]] std::size_t remaining() const noexcept { return in_.size() - pos_; }

  bool get_at_most(std::uint64_t& v, std::uint64_t max) {
    return get(v) && (v <= max || fail(DecodeError::kOutOfRange));
  }

  bool fail(DecodeError e) noexcept {
    error_ = e;
    return false;
  }

  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
  std::optional<DecodeError> error_;
};

// A default-constructed Message holding the alternative numbered `type` (which must be valid).
template <std::size_t... kIndex>
Message make_message(MessageType type, std::index_sequence<kIndex...>) {
  using Make = Message (*)();
  static constexpr Make kMake[] = {[]() { return Message(std::in_place_index<kIndex>); }...};
  return kMake[static_cast<std::size_t>(type)]();
}

}  // namespace

std::string_view to_string(DecodeError e) noexcept {
  switch (e) {
    case DecodeError::kUnknownType: return "unknown_type";
    case DecodeError::kTruncated: return "truncated";
    case DecodeError::kOverlongVarint: return "overlong_varint";
    case DecodeError::kOutOfRange: return "out_of_range";
    case DecodeError::kLengthExceedsInput: return "length_exceeds_input";
    case DecodeError::kTrailingBytes: return "trailing_bytes";
  }
  return "invalid_decode_error";
}

void encode_message(const Message& m, std::string& out) {
  Writer writer(out);
  std::visit([&writer](const auto& alternative) { writer.put(alternative); }, m);
}

DecodedMessage decode_message(MessageType type, std::span<const std::byte> payload) {
  // Every uint8_t is a valid MessageType value, so this is a check of wire input.
  if (static_cast<std::size_t>(type) >= kMessageTypeCount) {
    return {.message = {}, .error = DecodeError::kUnknownType};
  }
  DecodedMessage result{
      .message = make_message(type, std::make_index_sequence<kMessageTypeCount>{}),
      .error = std::nullopt};
  Reader reader(payload);
  std::visit([&reader](auto& alternative) { reader.get(alternative); }, result.message);
  result.error = reader.finish();
  URAFT_ASSERT(message_type(result.message) == type);
  return result;
}

}  // namespace uraft
