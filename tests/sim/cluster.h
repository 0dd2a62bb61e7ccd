// The cluster simulator: N uraftd nodes in one process on the simulated loop — the real
// kv::Service, Node and WalStorage over SimFs (a simulated disk) and SimNetwork (real frames
// through the codec) — driven by simulated clients and a nemesis that injects network,
// process and disk faults, all drawn from one seed. Checkers that do not trust the nodes judge the run: the clients' history
// must be linearizable (history.h), the wire and the restarted disks must keep Raft's
// promises (wire_checker.h), equal applied indexes must mean equal stores, and once the
// faults heal the cluster must elect a leader, take a write and catch every node up.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/clock.h"

namespace uraft::sim {

struct SimOptions {
  std::uint64_t seed = 1;
  std::size_t nodes = 3;
  bool net_faults = true;
  bool process_faults = true;
  bool disk_faults = true;
  Duration duration = std::chrono::seconds(20);        // Virtual time with faults and clients.
  Duration liveness_bound = std::chrono::seconds(10);  // After healing: leader, write, catch-up.
  std::size_t clients = 4;
  std::size_t keys = 8;
  bool trace_all = false;  // Print every event as it happens (stderr).
};

struct SimResult {
  std::vector<std::string> violations;  // Empty: the seed passed.
  std::vector<std::string> trace;       // The last events before the end (or the violation).
  // What the run did.
  std::uint64_t ops = 0;
  std::uint64_t ops_ok = 0;
  std::uint64_t ops_indeterminate = 0;
  std::uint64_t crashes = 0;
  std::uint64_t restarts = 0;
  std::uint64_t refusals = 0;       // Restarts the WAL refused (a corrupt record found).
  std::uint64_t node_failures = 0;  // A node stopped by a storage error (then restarted).
  std::uint64_t writes_lost = 0;    // Unsynced disk operations crashes dropped.
  std::uint64_t leaders = 0;        // Terms with a leader seen on the wire.
  std::uint64_t committed = 0;      // Entries seen committed on the wire.
  std::uint64_t frames_refused = 0;  // Frames corrupted on the way that the receiver refused.
  std::uint64_t lease_reads = 0;     // Reads leaders served by their lease (no round).
  std::uint64_t lin_states = 0;
  bool lin_gave_up = false;
  double virtual_seconds = 0;
  bool ok() const noexcept { return violations.empty(); }
};

SimResult run_simulation(const SimOptions& options);

// The one-line command that replays `options`.
std::string replay_command(const SimOptions& options);

}  // namespace uraft::sim
