// Random Messages for the net tests and the fuzz target. Integers take every width (so varints
// of every length appear) and strings run from empty to a few KiB.
#pragma once

#include <cstdint>
#include <iterator>
#include <random>
#include <string>

#include "net/codec.h"

namespace uraft::test {

using Rng = std::mt19937_64;

inline constexpr std::uint64_t kSeed = 0x75726166745f6e65;  // Fixed: failures replay.
inline constexpr std::size_t kEntriesMax = 16;
inline constexpr std::size_t kShortStringBytesMax = 40;
inline constexpr std::size_t kLongStringBytesMax = 4096;

// Uniform in width first, then in value: 0, small and huge values are all common.
inline std::uint64_t random_u64(Rng& rng) {
  const auto bits = static_cast<unsigned>(rng() % 65);
  return bits == 0 ? 0 : rng() >> (64 - bits);
}

template <typename Strong>
Strong random_int(Rng& rng) {
  return Strong{static_cast<decltype(Strong{}.value)>(random_u64(rng))};
}

inline bool random_bool(Rng& rng) { return (rng() & 1) != 0; }

inline std::string random_string(Rng& rng) {
  const std::size_t max = rng() % 8 == 0 ? kLongStringBytesMax : kShortStringBytesMax;
  std::string s(rng() % (max + 1), '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

inline Message random_message(MessageType type, Rng& rng) {
  switch (type) {
    case MessageType::kRequestVoteArgs:
      return RequestVoteArgs{random_int<Term>(rng), random_int<NodeId>(rng),
                             random_int<LogIndex>(rng), random_int<Term>(rng), random_bool(rng),
                             random_bool(rng)};
    case MessageType::kRequestVoteReply:
      return RequestVoteReply{random_int<Term>(rng), random_bool(rng)};
    case MessageType::kAppendEntriesArgs: {
      AppendEntriesArgs m{random_int<Term>(rng), random_int<NodeId>(rng),
                          random_int<LogIndex>(rng), random_int<Term>(rng), {},
                          random_int<LogIndex>(rng)};
      m.entries.resize(rng() % (kEntriesMax + 1));
      for (LogEntry& e : m.entries) e = {random_int<Term>(rng), random_string(rng)};
      return m;
    }
    case MessageType::kAppendEntriesReply:
      return AppendEntriesReply{random_int<Term>(rng),     random_bool(rng),
                                random_int<Term>(rng),     random_int<LogIndex>(rng),
                                random_int<LogIndex>(rng), random_int<LogIndex>(rng)};
    case MessageType::kInstallSnapshotArgs:
      return InstallSnapshotArgs{random_int<Term>(rng),     random_int<NodeId>(rng),
                                 random_int<LogIndex>(rng), random_int<Term>(rng),
                                 random_u64(rng),           random_string(rng),
                                 random_bool(rng),          static_cast<std::uint32_t>(rng())};
    case MessageType::kInstallSnapshotReply:
      return InstallSnapshotReply{random_int<Term>(rng), random_u64(rng), random_bool(rng)};
    case MessageType::kTimeoutNowArgs:
      return TimeoutNowArgs{random_int<Term>(rng), random_int<NodeId>(rng),
                            random_int<LogIndex>(rng)};
    case MessageType::kTimeoutNowReply:
      return TimeoutNowReply{random_int<Term>(rng)};
    case MessageType::kClientRequest:
      return ClientRequest{random_string(rng)};
    case MessageType::kClientReply:
      return ClientReply{static_cast<ClientReply::Status>(
                             rng() % (static_cast<unsigned>(ClientReply::kStatusLast) + 1)),
                         random_int<NodeId>(rng), random_string(rng)};
  }
  return {};
}

inline MessageType random_type(Rng& rng) {
  return static_cast<MessageType>(rng() % kMessageTypeCount);
}

inline const char* type_name(MessageType type) {
  constexpr const char* kNames[] = {"RequestVoteArgs",      "RequestVoteReply",
                                    "AppendEntriesArgs",    "AppendEntriesReply",
                                    "InstallSnapshotArgs",  "InstallSnapshotReply",
                                    "ClientRequest",        "ClientReply",
                                    "TimeoutNowArgs",       "TimeoutNowReply"};
  static_assert(std::size(kNames) == kMessageTypeCount);
  return kNames[static_cast<std::size_t>(type)];
}

}  // namespace uraft::test
