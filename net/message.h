// Every message Raft and uraftd put on the wire, as plain structs. The codec
// (net/codec.h) turns them into bytes; the RPC layer pairs requests with replies.
// Field names follow Figure 2 of the Raft paper.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "net/types.h"

namespace uraft {

struct LogEntry {
  Term term;
  std::string command;  // Opaque to Raft: the service's bytes.

  friend bool operator==(const LogEntry&, const LogEntry&) = default;
};

// With pre_vote (Raft thesis §9.6) the question is "would you vote for me in `term`?": the
// receiver answers without changing its term or its vote, and the asker's term stays below
// `term` until a majority said yes.
struct RequestVoteArgs {
  Term term;
  NodeId candidate_id;
  LogIndex last_log_index;
  Term last_log_term;
  bool pre_vote = false;
  // The leader asked for this election (TimeoutNow, leadership transfer): voters do not
  // hold to the leader they heard from lately (Raft thesis §3.10, §4.2.3).
  bool transfer = false;

  friend bool operator==(const RequestVoteArgs&, const RequestVoteArgs&) = default;
};

// The voter's own term (for a pre-vote too: a granted pre-vote is below the term asked about).
struct RequestVoteReply {
  Term term;
  bool vote_granted = false;

  friend bool operator==(const RequestVoteReply&, const RequestVoteReply&) = default;
};

struct AppendEntriesArgs {
  Term term;
  NodeId leader_id;
  LogIndex prev_log_index;
  Term prev_log_term;
  std::vector<LogEntry> entries;  // Empty for a heartbeat.
  LogIndex leader_commit;

  friend bool operator==(const AppendEntriesArgs&, const AppendEntriesArgs&) = default;
};

// On rejection, the follower's hints for fast backtracking (lab 2B guidance):
// conflict_term is the term of its entry at prev_log_index (0 if it has none there),
// conflict_index the first index it holds with that term, log_length its last index + 1.
struct AppendEntriesReply {
  Term term;
  bool success = false;
  Term conflict_term;
  LogIndex conflict_index;
  LogIndex log_length;
  LogIndex match_index;  // On success: the last index known to match the leader's log.

  friend bool operator==(const AppendEntriesReply&, const AppendEntriesReply&) = default;
};

// A snapshot travels in chunks (Figure 13); `offset` is where `data` starts, `done` marks the
// last one.
struct InstallSnapshotArgs {
  Term term;
  NodeId leader_id;
  LogIndex last_included_index;
  Term last_included_term;
  std::uint64_t offset = 0;
  std::string data;
  bool done = false;
  // With done: CRC32C of the whole snapshot. The receiver installs only bytes that match it.
  std::uint32_t crc = 0;

  friend bool operator==(const InstallSnapshotArgs&, const InstallSnapshotArgs&) = default;
};

struct InstallSnapshotReply {
  Term term;
  // The follower holds the snapshot's bytes below this offset: the next chunk starts here.
  std::uint64_t next_offset = 0;
  // The whole snapshot is in and durable (or the follower's log already held everything in
  // it): the leader may count the follower as matching at last_included_index.
  bool installed = false;

  friend bool operator==(const InstallSnapshotReply&, const InstallSnapshotReply&) = default;
};

// Leadership transfer (Raft thesis §3.10): the leader, having brought the receiver's log up to
// its own, asks it to stand for election at once (without waiting for its timer or pre-vote).
struct TimeoutNowArgs {
  Term term;
  NodeId leader_id;
  // The leader's last index when it asked: the receiver stands only if its log ends there
  // too (a TimeoutNow that arrives after the transfer was abandoned, and the leader took new
  // commands, is ignored).
  LogIndex last_log_index;

  friend bool operator==(const TimeoutNowArgs&, const TimeoutNowArgs&) = default;
};

struct TimeoutNowReply {
  Term term;

  friend bool operator==(const TimeoutNowReply&, const TimeoutNowReply&) = default;
};

// A follower forwards a client's request to the leader, which answers with the result.
struct ClientRequest {
  std::string payload;  // Service-defined (uraftd: a batch of RESP commands).

  friend bool operator==(const ClientRequest&, const ClientRequest&) = default;
};

struct ClientReply {
  enum class Status : std::uint8_t { kOk = 0, kNotLeader = 1, kError = 2 };
  static constexpr Status kStatusLast = Status::kError;  // The codec rejects anything above.
  Status status = Status::kOk;
  NodeId leader_hint = kNoNode;
  std::string payload;

  friend bool operator==(const ClientReply&, const ClientReply&) = default;
};

using Message = std::variant<RequestVoteArgs, RequestVoteReply, AppendEntriesArgs,
                             AppendEntriesReply, InstallSnapshotArgs, InstallSnapshotReply,
                             ClientRequest, ClientReply, TimeoutNowArgs, TimeoutNowReply>;

}  // namespace uraft
