// Config: a Raft peer's timing and bounds. Two presets: lab() meets the MIT 6.824 tester's
// windows (shared/spec/raft-lab-tests.md §5); production() suits a LAN cluster of uraftd.
#pragma once

#include <chrono>
#include <cstddef>

#include "core/assert.h"
#include "core/clock.h"

namespace uraft {

struct Config {
  // Leaders send AppendEntries (empty when there is nothing new) to every follower at least
  // this often. The lab allows at most 10 heartbeats per second per peer.
  Duration heartbeat_interval = std::chrono::milliseconds(100);
  // A follower that hears from no leader (and grants no vote) for a time drawn uniformly from
  // [min, max] becomes a candidate; a candidacy that neither wins nor hears of a leader in such
  // a time starts another. max > min spreads candidates apart, so split votes stay rare.
  Duration election_timeout_min = std::chrono::milliseconds(300);
  Duration election_timeout_max = std::chrono::milliseconds(600);
  // How long one RPC may wait for its reply. A slow reply still counts if it comes in time,
  // so this is well above a round trip: late replies carry useful match indexes.
  Duration rpc_timeout = std::chrono::milliseconds(1000);
  // A candidate re-sends a RequestVote that failed (lost, unreachable) after this long, for as
  // long as the candidacy lasts.
  Duration vote_retry_interval = std::chrono::milliseconds(50);
  // A snapshot travels to a follower in chunks of this many bytes (Figure 13's offsets), one
  // chunk in flight at a time, with heartbeats between: far below a frame (64 MiB), and
  // quick enough to send that a slow link never looks like a dead leader.
  std::size_t snapshot_chunk_bytes = 1024 * 1024;
  // RPCs in flight to one follower. Heartbeats keep going while earlier replies are slow; the
  // bound caps the tasks and the bytes a leader spends on an unreachable follower.
  std::size_t inflight_max = 16;
  // Command bytes per AppendEntries (at least one entry is always sent).
  std::size_t append_bytes_max = 64 * 1024;
  // Pipelining: AppendEntries carrying entries in flight per follower once it is known to
  // match (after a success; any rejection or lost request falls back to one at a time from
  // its match index), and the command bytes they may carry together. 1: stop and wait, as
  // in lab(): the lab suite's unreliable Figure 8 test missed its 10 s agreement window on
  // one seed in 60 with a window of 4 (more duplicate traffic after losses).
  std::size_t append_window = 1;
  std::size_t append_window_bytes = 4 * 1024 * 1024;
  // Apply messages buffered between Raft and the service. The lab's channel is unbuffered;
  // 1 is the closest a Channel comes, so a slow service holds back apply at once.
  std::size_t apply_channel_capacity = 1;
  // A new leader appends an empty command at once, so that an entry of its term commits
  // without waiting for a client: earlier terms' entries commit (Figure 8) and ReadIndex can
  // serve reads. The apply stream then carries these empty commands; services skip them.
  // Off in lab() (the lab's tests expect commands at the indexes they chose).
  bool commit_noop_on_election = false;
  // Pre-vote (Raft thesis §9.6): a node whose election timer fires first asks whether a
  // majority would vote for it in the next term, without raising its own; only then does it
  // stand. A node back from a partition, or one whose log is behind, raises no term, and a
  // node that heard from a leader within election_timeout_min says no.
  bool pre_vote = true;
  // Check-quorum (Raft thesis §6.2): a leader that has not heard from a majority (itself
  // included) within election_timeout_min steps down, so reads and writes on a leader cut off
  // in a minority fail fast. And (§4.2.3) within that time of hearing from a leader, a node
  // neither raises its term for a RequestVote nor grants it, unless the leader itself asked
  // for the election (leadership transfer).
  bool check_quorum = true;
  // Lease reads (Raft thesis §6.4.1), off by default: a leader whose requests sent at time t
  // were answered in its term by a majority serves reads without a round until
  // t + election_timeout_min * (1 - clock_drift_max), counted on its own clock. Safe only if
  // no node's clock runs faster than another's by more than clock_drift_max over an election
  // timeout (the followers count their side of the lease, election_timeout_min, on theirs);
  // needs check_quorum (followers refuse votes during the lease). ReadIndex otherwise.
  bool lease_reads = false;
  double clock_drift_max = 0.1;

  // The tester's windows: heartbeats 10/s (its limit), elections decided well within the
  // 5 s checkOneLeader allows (10 checks 450-549 ms apart), and 3 election timeouts fit in
  // the 1 s RaftElectionTimeout its sleeps are built on.
  static Config lab() { return Config{}; }

  // A LAN cluster: faster heartbeats and failover; a deeper apply buffer and wider batches so
  // a busy leader is not held back by its own state machine.
  static Config production() {
    Config c;
    c.heartbeat_interval = std::chrono::milliseconds(50);
    c.election_timeout_min = std::chrono::milliseconds(500);
    c.election_timeout_max = std::chrono::milliseconds(1000);
    c.rpc_timeout = std::chrono::milliseconds(500);
    c.vote_retry_interval = std::chrono::milliseconds(50);
    c.inflight_max = 8;
    c.append_bytes_max = 1024 * 1024;
    c.append_window = 8;
    c.append_window_bytes = 8 * 1024 * 1024;
    c.apply_channel_capacity = 1024;
    c.commit_noop_on_election = true;
    return c;
  }

  // The relations the drivers rely on.
  void validate() const {
    URAFT_ASSERT(heartbeat_interval > Duration::zero());
    URAFT_ASSERT(election_timeout_min > 2 * heartbeat_interval);  // Survive one lost heartbeat.
    URAFT_ASSERT(election_timeout_max >= election_timeout_min);
    URAFT_ASSERT(rpc_timeout > Duration::zero());
    URAFT_ASSERT(vote_retry_interval > Duration::zero());
    URAFT_ASSERT(inflight_max >= 1);
    URAFT_ASSERT(append_bytes_max >= 1);
    URAFT_ASSERT(snapshot_chunk_bytes >= 1);
    URAFT_ASSERT(append_window >= 1);
    URAFT_ASSERT(append_window <= inflight_max);  // Leaves no slot for a heartbeat otherwise.
    URAFT_ASSERT(append_window_bytes >= 1);
    URAFT_ASSERT(apply_channel_capacity >= 1);
    URAFT_ASSERT(!lease_reads || check_quorum);  // The followers' side of the lease.
    URAFT_ASSERT(clock_drift_max >= 0 && clock_drift_max < 1);
  }
};

}  // namespace uraft
