#include "kv/batch.h"

#include "core/assert.h"
#include "kv/store.h"
#include "net/codec.h"
#include "net/little_endian.h"
#include "net/varint.h"

namespace uraft::kv {

namespace {

// The bytes `argv` adds to an entry.
std::size_t encoded_bytes(std::span<const std::string_view> argv) {
  std::size_t n = varint_bytes(argv.size());
  for (const std::string_view a : argv) n += varint_bytes(a.size()) + a.size();
  return n;
}

}  // namespace

std::string_view to_string(BatchError e) noexcept {
  switch (e) {
    case BatchError::kUnknownVersion: return "unknown version";
    case BatchError::kTruncated: return "truncated";
    case BatchError::kOverlongVarint: return "overlong varint";
    case BatchError::kTooBig: return "too big";
    case BatchError::kTooManyCommands: return "too many commands";
    case BatchError::kNoCommands: return "no commands";
    case BatchError::kEmptyCommand: return "empty command";
    case BatchError::kTooManyArguments: return "too many arguments";
    case BatchError::kArgumentTooLong: return "argument too long";
    case BatchError::kLengthExceedsInput: return "length exceeds input";
    case BatchError::kTrailingBytes: return "trailing bytes";
  }
  return "unknown batch error";
}

BatchEncoder::BatchEncoder() { entry_.reserve(kBatchHeaderBytes); }

bool BatchEncoder::add(std::span<const std::string_view> argv) {
  URAFT_ASSERT(!argv.empty());
  URAFT_ASSERT(argv.size() <= kArrayElementsMax);
  const std::size_t bytes = encoded_bytes(argv);
  if (commands_ > 0) {
    if (commands_ == kBatchCommandsMax) return false;
    if (entry_.size() + bytes > kBatchBytesMax) return false;
  } else {
    // Every request the parser accepts fits an empty batch (kBatchBytesMax's static_assert).
    URAFT_ASSERT(kBatchHeaderBytes + bytes <= kBatchBytesMax);
    entry_.assign(kBatchHeaderBytes, '\0');
    entry_[0] = static_cast<char>(kBatchVersion);
  }
  put_varint(entry_, argv.size());
  for (const std::string_view a : argv) {
    URAFT_ASSERT(a.size() <= kBulkBytesMax);
    put_varint(entry_, a.size());
    entry_ += a;
  }
  ++commands_;
  store_le(entry_.data() + 1, commands_, 4);
  return true;
}

std::string BatchEncoder::take() {
  std::string entry;
  entry.swap(entry_);
  commands_ = 0;
  return entry;
}

std::string encode_batch(std::span<const std::vector<std::string_view>> commands) {
  BatchEncoder encoder;
  for (const auto& argv : commands) {
    const bool added = encoder.add(argv);
    URAFT_ASSERT(added);
  }
  return encoder.take();
}

std::span<const std::string_view> DecodedBatch::command(std::size_t i) const {
  URAFT_ASSERT(i < ends.size());
  const std::size_t begin = i == 0 ? 0 : ends[i - 1];
  return std::span<const std::string_view>(args).subspan(begin, ends[i] - begin);
}

std::optional<BatchError> decode_batch(std::string_view entry, DecodedBatch& out) {
  out.args.clear();
  out.ends.clear();
  if (entry.empty()) return std::nullopt;
  auto fail = [&out](BatchError e) {
    out.args.clear();
    out.ends.clear();
    return std::optional<BatchError>(e);
  };
  if (entry.size() > kBatchBytesMax) return fail(BatchError::kTooBig);
  if (static_cast<std::uint8_t>(entry[0]) != kBatchVersion) return fail(BatchError::kUnknownVersion);
  if (entry.size() < kBatchHeaderBytes) return fail(BatchError::kTruncated);
  const std::uint64_t count = load_le(byte_span(entry).data() + 1, 4);
  if (count > kBatchCommandsMax) return fail(BatchError::kTooManyCommands);
  // One encoding per batch: the empty batch is only ever the empty entry.
  if (count == 0) return fail(BatchError::kNoCommands);
  std::size_t pos = kBatchHeaderBytes;
  // Each command takes at least two bytes (argc 1, one empty argument).
  if (count > (entry.size() - pos) / 2) return fail(BatchError::kLengthExceedsInput);

  BatchError error = BatchError::kTruncated;
  auto read_varint = [&](std::uint64_t& v) {
    const VarintDecoded d = decode_varint(byte_span(entry.substr(pos)));
    if (d.status != VarintStatus::kOk) {
      error = d.status == VarintStatus::kTruncated ? BatchError::kTruncated
                                                   : BatchError::kOverlongVarint;
      return false;
    }
    v = d.value;
    pos += d.bytes;
    return true;
  };

  out.ends.reserve(count);
  for (std::uint64_t c = 0; c < count; ++c) {
    std::uint64_t argc = 0;
    if (!read_varint(argc)) return fail(error);
    if (argc == 0) return fail(BatchError::kEmptyCommand);
    if (argc > kArrayElementsMax) return fail(BatchError::kTooManyArguments);
    // Each argument takes at least one byte (its length).
    if (argc > entry.size() - pos) return fail(BatchError::kLengthExceedsInput);
    for (std::uint64_t a = 0; a < argc; ++a) {
      std::uint64_t n = 0;
      if (!read_varint(n)) return fail(error);
      if (n > kBulkBytesMax) return fail(BatchError::kArgumentTooLong);
      if (n > entry.size() - pos) return fail(BatchError::kLengthExceedsInput);
      out.args.push_back(entry.substr(pos, n));
      pos += n;
    }
    out.ends.push_back(out.args.size());
  }
  if (pos != entry.size()) return fail(BatchError::kTrailingBytes);
  URAFT_ASSERT(out.ends.size() == count);
  return std::nullopt;
}

std::string_view BatchReplies::reply(std::size_t i) const {
  URAFT_ASSERT(i < ends.size());
  const std::size_t begin = i == 0 ? 0 : ends[i - 1];
  return std::string_view(bytes).substr(begin, ends[i] - begin);
}

void BatchReplies::clear() noexcept {
  bytes.clear();
  ends.clear();
}

std::optional<BatchError> apply_batch(Store& store, std::string_view entry,
                                      BatchReplies& replies) {
  replies.clear();
  // One decode buffer per thread: a node applies batches one at a time, and this keeps the
  // apply path free of per-entry allocations once warm.
  thread_local DecodedBatch decoded;
  if (const auto error = decode_batch(entry, decoded)) return error;
  replies.ends.reserve(decoded.size());
  for (std::size_t i = 0; i < decoded.size(); ++i) {
    store.apply(decoded.command(i), replies.bytes);
    URAFT_ASSERT(replies.bytes.size() > (replies.ends.empty() ? 0 : replies.ends.back()));
    replies.ends.push_back(replies.bytes.size());
  }
  return std::nullopt;
}

}  // namespace uraft::kv
