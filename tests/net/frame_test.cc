// Tests for net/frame.h: frames of every type round-trip; truncations, bit flips, foreign
// clusters, other versions and huge lengths are typed errors, never crashes or big allocations.
#include "net/frame.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "net/crc32c.h"
#include "net/varint.h"
#include "tests/net/allocation_probe.h"
#include "tests/net/random_message.h"

namespace uraft {
namespace {

using test::Rng;

constexpr std::uint64_t kCluster = 0xC0FFEE;
constexpr std::size_t kVersionAt = 4;
constexpr std::size_t kTypeAt = 13;
constexpr std::size_t kPayloadBytesAt = 22;
constexpr std::size_t kCrcAt = 26;
constexpr std::size_t kFramesPerType = 4;
constexpr std::size_t kBitFlipFrameBytesMax = 1024;  // Keeps every-bit loops quick.

std::string frame_of(const Message& m, std::uint64_t request_id = 7,
                     std::uint64_t cluster = kCluster) {
  std::string out;
  REQUIRE(encode_frame(cluster, request_id, m, out));
  return out;
}

DecodedFrame decode(const std::string& bytes, std::uint64_t cluster = kCluster) {
  return decode_frame(byte_span(bytes), cluster);
}

// Recomputes the CRC after a test edits the header, so the edit itself is what gets rejected.
void reseal(std::string& frame) {
  const auto bytes = byte_span(frame);
  const std::uint32_t crc = crc32c(bytes.subspan(kFrameHeaderBytes), crc32c(bytes.first(kCrcAt)));
  for (std::size_t i = 0; i < 4; ++i) frame[kCrcAt + i] = static_cast<char>(crc >> (8 * i));
}

void set_payload_bytes(std::string& frame, std::uint32_t n) {
  for (std::size_t i = 0; i < 4; ++i) frame[kPayloadBytesAt + i] = static_cast<char>(n >> (8 * i));
}

// A few random frames of every type, small enough to flip every bit of.
std::vector<std::string> sample_frames(Rng& rng) {
  std::vector<std::string> frames;
  for (std::size_t t = 0; t < kMessageTypeCount; ++t) {
    while (frames.size() < (t + 1) * kFramesPerType) {
      const Message m = test::random_message(static_cast<MessageType>(t), rng);
      std::string f = frame_of(m, rng());
      if (f.size() <= kBitFlipFrameBytesMax) frames.push_back(std::move(f));
    }
  }
  return frames;
}

TEST_CASE("back-to-back frames of every type decode in order with their request ids") {
  // Goal: a stream of frames splits at frame_bytes, and each message and id comes back intact.
  Rng rng(test::kSeed + 10);
  std::vector<Message> sent;
  std::vector<std::uint64_t> ids;
  std::string stream;
  for (int i = 0; i < 2000; ++i) {
    sent.push_back(test::random_message(test::random_type(rng), rng));
    ids.push_back(test::random_u64(rng));
    REQUIRE(encode_frame(kCluster, ids.back(), sent.back(), stream));
  }
  auto rest = byte_span(stream);
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const DecodedFrame d = decode_frame(rest, kCluster);
    REQUIRE_FALSE(d.error);
    REQUIRE(d.message == sent[i]);
    REQUIRE(d.request_id == ids[i]);
    rest = rest.subspan(d.frame_bytes);
  }
  CHECK(rest.empty());
}

TEST_CASE("frame sizes: header plus the codec's payload") {
  // Goal: report and bound the on-wire size of the common frames.
  const AppendEntriesArgs heartbeat{Term{42}, NodeId{2}, LogIndex{123456}, Term{41}, {},
                                    LogIndex{123450}};
  AppendEntriesArgs batch = heartbeat;
  for (int i = 0; i < 10; ++i) batch.entries.push_back({Term{42}, std::string(5000, 'x')});
  const RequestVoteArgs vote{Term{42}, NodeId{2}, LogIndex{123456}, Term{41}};
  const std::size_t heartbeat_bytes = frame_of(heartbeat).size();
  const std::size_t batch_bytes = frame_of(batch).size();
  const std::size_t vote_bytes = frame_of(vote).size();
  MESSAGE("frames: heartbeat " << heartbeat_bytes << " B, 10 x 5000 B batch " << batch_bytes
                               << " B, RequestVote " << vote_bytes << " B (header "
                               << kFrameHeaderBytes << " B)");
  CHECK(heartbeat_bytes <= kFrameHeaderBytes + 12);
  CHECK(batch_bytes < 3 * 50000);
  CHECK(batch_bytes <= kFrameHeaderBytes + 50000 + 12 + 10 * 3);
  CHECK(vote_bytes <= kFrameHeaderBytes + 8);
}

TEST_CASE("every truncation of a valid frame asks for more bytes") {
  // Goal: a stream reader holding part of a frame is told to wait, and for how much once the
  // header is in.
  Rng rng(test::kSeed + 11);
  for (const std::string& frame : sample_frames(rng)) {
    for (std::size_t n = 0; n < frame.size(); ++n) {
      const DecodedFrame d = decode(frame.substr(0, n));
      REQUIRE(d.error == FrameError::kNeedMoreBytes);
      REQUIRE(d.frame_bytes == (n < kFrameHeaderBytes ? kFrameHeaderBytes : frame.size()));
    }
  }
}

TEST_CASE("every single-bit flip of a valid frame is rejected by the check that owns the bit") {
  // Goal: corruption anywhere is caught; magic and version first, a changed length as
  // oversized or short, everything else by the CRC.
  Rng rng(test::kSeed + 12);
  FrameErrorCounters counters;
  for (const std::string& frame : sample_frames(rng)) {
    for (std::size_t bit = 0; bit < 8 * frame.size(); ++bit) {
      std::string flipped = frame;
      flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
      const std::size_t at = bit / 8;
      const DecodedFrame d = decode(flipped);
      CAPTURE(at);
      REQUIRE(d.error);
      counters.count(*d.error);
      if (at < kVersionAt) {
        REQUIRE(d.error == FrameError::kBadMagic);
      } else if (at == kVersionAt) {
        REQUIRE(d.error == FrameError::kUnknownVersion);
      } else if (at >= kPayloadBytesAt && at < kCrcAt) {
        REQUIRE((d.error == FrameError::kOversized || d.error == FrameError::kNeedMoreBytes ||
                 d.error == FrameError::kBadCrc));
      } else {
        REQUIRE(d.error == FrameError::kBadCrc);
      }
    }
  }
  MESSAGE("bit flips: " << to_string(counters));
}

TEST_CASE("a frame from another cluster is rejected") {
  // Goal: a peer of another cluster is refused even though its frame is intact.
  const std::string frame = frame_of(RequestVoteReply{Term{3}, true}, 1, kCluster + 1);
  CHECK(decode(frame).error == FrameError::kWrongCluster);
  CHECK_FALSE(decode(frame, kCluster + 1).error);
}

TEST_CASE("another version is rejected before its CRC is trusted") {
  // Goal: a future version, CRC and all, is unknown_version, not misread as this one.
  std::string frame = frame_of(InstallSnapshotReply{Term{9}});
  frame[kVersionAt] = static_cast<char>(kFrameVersion + 1);
  reseal(frame);
  CHECK(decode(frame).error == FrameError::kUnknownVersion);
}

TEST_CASE("an oversized length is rejected from the header alone") {
  // Goal: a reader never waits for (or buffers) more than kFrameBytesMax on a length's word.
  std::string frame = frame_of(ClientRequest{"x"});
  set_payload_bytes(frame, static_cast<std::uint32_t>(kFramePayloadBytesMax + 1));
  std::string header = frame.substr(0, kFrameHeaderBytes);
  std::vector<std::optional<FrameError>> errors;
  errors.reserve(3);
  std::size_t allocated = 0;
  {
    test::AllocationProbe probe;
    errors.push_back(decode(header).error);
    errors.push_back(decode(frame).error);
    set_payload_bytes(header, UINT32_MAX);
    errors.push_back(decode(header).error);
    allocated = probe.largest_bytes();
  }
  for (const auto& e : errors) CHECK(e == FrameError::kOversized);
  CHECK(allocated == 0);

  // The largest allowed length asks for the rest of the frame instead.
  set_payload_bytes(frame, static_cast<std::uint32_t>(kFramePayloadBytesMax));
  const DecodedFrame d = decode(frame);
  CHECK(d.error == FrameError::kNeedMoreBytes);
  CHECK(d.frame_bytes == kFrameBytesMax);
}

TEST_CASE("encode_frame refuses a message larger than a frame may be") {
  // Goal: the sender hits the same bound the receiver enforces, and its buffer is untouched.
  std::string out = "earlier frames";
  const ClientRequest huge{std::string(kFramePayloadBytesMax, 'x')};
  CHECK_FALSE(encode_frame(kCluster, 1, huge, out));
  CHECK(out == "earlier frames");
  const ClientRequest largest{
      std::string(kFramePayloadBytesMax - varint_bytes(kFramePayloadBytesMax), 'x')};
  CHECK(encode_frame(kCluster, 1, largest, out));
  CHECK(out.size() == 14 + kFrameBytesMax);
}

TEST_CASE("an unknown type or a bad payload behind a good CRC is a typed error") {
  // Goal: what passes the CRC still goes through the decoder's checks.
  std::string frame = frame_of(InstallSnapshotReply{Term{9}});
  frame[kTypeAt] = static_cast<char>(kMessageTypeCount);
  reseal(frame);
  CHECK(decode(frame).error == FrameError::kUnknownType);

  frame = frame_of(InstallSnapshotReply{Term{9}});
  frame += '\0';  // A trailing byte inside the payload.
  set_payload_bytes(frame, static_cast<std::uint32_t>(frame.size() - kFrameHeaderBytes));
  reseal(frame);
  const DecodedFrame d = decode(frame);
  CHECK(d.error == FrameError::kBadPayload);
  CHECK(d.payload_error == DecodeError::kTrailingBytes);
}

TEST_CASE("random bytes never crash decode_frame") {
  // Goal: garbage, with or without a plausible header prefix, is always a clean FrameError.
  Rng rng(test::kSeed + 13);
  const std::string good = frame_of(RequestVoteArgs{Term{1}, NodeId{1}, LogIndex{1}, Term{1}});
  FrameErrorCounters counters;
  std::string bytes;
  for (int i = 0; i < 100000; ++i) {
    bytes.resize(rng() % 80);
    for (char& c : bytes) c = static_cast<char>(rng());
    // Half the time, keep a real header prefix so later checks are reached too.
    if (rng() % 2 == 0) {
      const std::size_t n = std::min(bytes.size(), static_cast<std::size_t>(rng() % kCrcAt));
      bytes.replace(0, n, good, 0, n);
    }
    const DecodedFrame d = decode(bytes);
    REQUIRE(d.error);
    counters.count(*d.error);
  }
  MESSAGE("random frames: " << to_string(counters));
  CHECK(counters.total() == 100000);
}

TEST_CASE("FrameErrorCounters count each kind and print the non-zero ones") {
  // Goal: a transport can bump and log the counters without bookkeeping of its own.
  FrameErrorCounters counters;
  CHECK(to_string(counters) == "none");
  counters.count(FrameError::kBadCrc);
  counters.count(FrameError::kBadCrc);
  counters.count(FrameError::kWrongCluster);
  CHECK(counters[FrameError::kBadCrc] == 2);
  CHECK(counters.total() == 3);
  CHECK(to_string(counters) == "bad_crc=2 wrong_cluster=1");
  for (std::size_t i = 0; i < kFrameErrorCount; ++i) {
    CHECK(to_string(static_cast<FrameError>(i)) != "invalid_frame_error");
  }
}

}  // namespace
}  // namespace uraft
