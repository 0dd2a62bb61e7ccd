// Tests for net/codec.h: round trips of random messages of every type, compactness, and clean
// typed errors (never a crash, never an unjustified allocation) on malformed payloads.
#include "net/codec.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "net/varint.h"
#include "tests/net/allocation_probe.h"
#include "tests/net/random_message.h"

namespace uraft {
namespace {

using test::Rng;

constexpr int kRoundTripsPerType = 3000;
constexpr int kGarbagePayloads = 200000;

DecodedMessage decode(MessageType type, const std::string& payload) {
  return decode_message(type, byte_span(payload));
}

std::string encode(const Message& m) {
  std::string out;
  encode_message(m, out);
  return out;
}

// The most a decoder may allocate at once for `payload_bytes` of input: a string as long as
// the input, or one LogEntry per two bytes (the least an entry takes).
std::size_t justified_bytes(std::size_t payload_bytes) {
  return std::max(payload_bytes + 1, payload_bytes / 2 * sizeof(LogEntry));
}

// Decodes while recording the largest single allocation the decoder made.
DecodedMessage decode_probed(MessageType type, const std::string& payload, std::size_t& largest) {
  test::AllocationProbe probe;
  DecodedMessage result = decode(type, payload);
  largest = probe.largest_bytes();
  return result;
}

TEST_CASE("random messages of every type round-trip through the codec") {
  // Goal: decode(encode(m)) == m, and re-encoding gives the same bytes, for every alternative.
  Rng rng(test::kSeed);
  std::string buffer;  // Reused, as a transport would.
  for (std::size_t t = 0; t < kMessageTypeCount; ++t) {
    const auto type = static_cast<MessageType>(t);
    CAPTURE(test::type_name(type));
    for (int i = 0; i < kRoundTripsPerType; ++i) {
      const Message m = test::random_message(type, rng);
      buffer.clear();
      encode_message(m, buffer);
      const DecodedMessage d = decode(type, buffer);
      REQUIRE_FALSE(d.error);
      REQUIRE(d.message == m);
      REQUIRE(encode(d.message) == buffer);
    }
  }
}

TEST_CASE("encoded messages are compact") {
  // Goal: per-field overhead is a few bytes, far under gob's (< 3x payload for big batches).
  const std::string heartbeat = encode(AppendEntriesArgs{
      Term{42}, NodeId{2}, LogIndex{123456}, Term{41}, {}, LogIndex{123450}});
  MESSAGE("heartbeat AppendEntries payload: " << heartbeat.size() << " bytes");
  CHECK(heartbeat.size() <= 12);

  AppendEntriesArgs batch{Term{42}, NodeId{2}, LogIndex{123456}, Term{41}, {}, LogIndex{123450}};
  for (int i = 0; i < 10; ++i) batch.entries.push_back({Term{42}, std::string(5000, 'x')});
  const std::string big = encode(batch);
  MESSAGE("AppendEntries with 10 x 5000-byte commands payload: " << big.size() << " bytes");
  CHECK(big.size() <= 50000 + 12 + 10 * 3);  // 1 byte of term and 2 of length per entry.

  const std::string vote =
      encode(RequestVoteArgs{Term{42}, NodeId{2}, LogIndex{123456}, Term{41}});
  MESSAGE("RequestVote payload: " << vote.size() << " bytes");
  CHECK(vote.size() <= 10);

  CHECK(encode(RequestVoteReply{Term{42}, true}).size() == 2);
  CHECK(encode(InstallSnapshotReply{Term{0}}).size() == 3);
}

TEST_CASE("every strict prefix of a payload is rejected") {
  // Goal: a truncated payload is a typed error whatever field the cut lands in.
  Rng rng(test::kSeed + 1);
  for (std::size_t t = 0; t < kMessageTypeCount; ++t) {
    const auto type = static_cast<MessageType>(t);
    CAPTURE(test::type_name(type));
    for (int i = 0; i < 20; ++i) {
      const std::string payload = encode(test::random_message(type, rng));
      for (std::size_t n = 0; n < payload.size(); ++n) {
        const DecodedMessage d = decode(type, payload.substr(0, n));
        REQUIRE(d.error);
        REQUIRE((d.error == DecodeError::kTruncated ||
                 d.error == DecodeError::kLengthExceedsInput));
      }
    }
  }
}

TEST_CASE("malformed fields give their own typed error") {
  // Goal: each kind of bad input maps to the DecodeError that names it.
  const auto vote_with = [](std::uint64_t candidate) {
    std::string p;
    put_varint(p, 1);          // term
    put_varint(p, candidate);  // candidate_id: a u32 on the wire as a varint
    put_varint(p, 1);          // last_log_index
    put_varint(p, 1);          // last_log_term
    put_varint(p, 0);          // pre_vote
    put_varint(p, 0);          // transfer
    return p;
  };
  CHECK_FALSE(decode(MessageType::kRequestVoteArgs, vote_with(0xffffffff)).error);
  CHECK(decode(MessageType::kRequestVoteArgs, vote_with(std::uint64_t{1} << 32)).error ==
        DecodeError::kOutOfRange);

  CHECK(decode(MessageType::kRequestVoteReply, std::string("\x01\x02", 2)).error ==
        DecodeError::kOutOfRange);  // A bool of 2.
  CHECK(decode(MessageType::kClientReply, std::string("\x03\x00\x00", 3)).error ==
        DecodeError::kOutOfRange);  // A status past kStatusLast.
  CHECK(decode(MessageType::kInstallSnapshotReply, std::string("\x80\x00", 2)).error ==
        DecodeError::kOverlongVarint);
  CHECK(decode(MessageType::kInstallSnapshotReply, std::string("\x01\x00\x00\x00", 4)).error ==
        DecodeError::kTrailingBytes);
  CHECK(decode(MessageType::kClientRequest, std::string("\x05" "abcd", 5)).error ==
        DecodeError::kLengthExceedsInput);
  CHECK(decode(static_cast<MessageType>(kMessageTypeCount), "").error ==
        DecodeError::kUnknownType);
  CHECK(decode(static_cast<MessageType>(255), "").error == DecodeError::kUnknownType);
  CHECK(to_string(DecodeError::kLengthExceedsInput) == "length_exceeds_input");
}

TEST_CASE("claimed counts and lengths are checked before anything is reserved") {
  // Goal: a small payload claiming 2^62 entries, or just one entry too many, allocates nothing big.
  const auto append_with_count = [](std::uint64_t count, std::size_t body_bytes) {
    std::string p;
    for (int i = 0; i < 4; ++i) put_varint(p, 1);  // term, leader_id, prev_log_index/term
    put_varint(p, count);
    p.append(body_bytes, '\0');  // Each pair of zero bytes reads as an empty entry of term 0.
    return p;
  };
  for (std::uint64_t count : {std::uint64_t{1} << 62, std::uint64_t{1} << 20, std::uint64_t{51}}) {
    CAPTURE(count);
    const std::string payload = append_with_count(count, 101);
    std::size_t largest = 0;
    CHECK(decode_probed(MessageType::kAppendEntriesArgs, payload, largest).error ==
          DecodeError::kLengthExceedsInput);
    CHECK(largest <= justified_bytes(payload.size()));
  }
  // 50 empty entries and a leader_commit fit in 101 bytes.
  CHECK_FALSE(decode(MessageType::kAppendEntriesArgs, append_with_count(50, 101)).error);

  std::string huge_string;
  put_varint(huge_string, std::uint64_t{1} << 40);
  huge_string += "short";
  std::size_t largest = 0;
  CHECK(decode_probed(MessageType::kClientRequest, huge_string, largest).error ==
        DecodeError::kLengthExceedsInput);
  CHECK(largest <= justified_bytes(huge_string.size()));
}

TEST_CASE("random payloads never crash the decoder and decode only canonically") {
  // Goal: any bytes give an error or a message that re-encodes to exactly those bytes, and the
  // decoder never allocates beyond what the input justifies.
  Rng rng(test::kSeed + 2);
  int decoded = 0;
  std::string payload;
  for (int i = 0; i < kGarbagePayloads; ++i) {
    const MessageType type = test::random_type(rng);
    // Mostly tiny, mostly small byte values: the shapes that sometimes decode.
    const std::size_t size_max = rng() % 4 == 0 ? 200 : 12;
    payload.resize(rng() % size_max);
    const unsigned byte_max = rng() % 2 == 0 ? 4 : 256;
    for (char& c : payload) c = static_cast<char>(rng() % byte_max);
    std::size_t largest = 0;
    const DecodedMessage d = decode_probed(type, payload, largest);
    REQUIRE(largest <= justified_bytes(payload.size()));
    if (d.error) continue;
    ++decoded;
    REQUIRE(message_type(d.message) == type);
    REQUIRE(encode(d.message) == payload);
  }
  MESSAGE(decoded << " of " << kGarbagePayloads << " random payloads decoded");
  CHECK(decoded > 0);
}

}  // namespace
}  // namespace uraft
