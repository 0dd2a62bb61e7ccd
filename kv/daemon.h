// uraftd as a program: its settings (one per command-line flag) and run_daemon(), which wires
// one node together on an io_uring loop — storage, TCP transport and RPC to the peers, the
// Raft node, the key-value service and the RESP client listener — and runs it until SIGTERM
// or SIGINT. kv/uraftd.cc only parses flags and sets up logging.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/task.h"

namespace uraft::kv {

// Default bounds and settings (each a flag; see docs/kv.md).
// The log is compacted into a snapshot once its entries above the last snapshot hold this
// many command bytes: big enough that snapshots stay rare under load, small enough that a
// restart replays little and a lagging follower is sent a snapshot rather than a long log.
inline constexpr std::size_t kSnapshotLogBytesDefault = std::size_t{64} << 20;
// Connected clients; more are accepted and closed with an error at once.
inline constexpr std::size_t kClientsMaxDefault = 10000;

enum class StorageKind : std::uint8_t { kWal, kMem };

struct DaemonConfig {
  std::uint32_t id = 0;                     // This node's id: its index in `peers`.
  std::vector<std::string> peers;           // Every node's peer address, "ip:port", by id.
  std::vector<std::string> client_addresses;  // Every node's client address (INFO); optional.
  std::string bind = "127.0.0.1";           // Where the client port listens.
  std::uint16_t port = 6381;                // The client port (RESP).
  std::string data_dir;                     // Where the WAL and snapshots live.
  StorageKind storage = StorageKind::kWal;
  std::uint64_t cluster_id = 1;
  std::string requirepass;                  // Empty: no AUTH needed.
  std::size_t snapshot_log_bytes = kSnapshotLogBytesDefault;
  std::size_t clients_max = kClientsMaxDefault;
  // On SIGTERM or SIGINT a leader first hands its leadership to the follower whose log
  // matches furthest (Raft thesis §3.10), so stopping it costs no election timeout.
  bool transfer_on_stop = true;
  bool snapshot_in_child = true;  // ServiceOptions::snapshot_in_child.
  // Lease reads (Raft thesis §6.4.1): reads on the leader without a quorum round while its
  // lease holds; relies on clocks drifting less than 10% over an election timeout.
  bool lease_reads = false;
};

// Runs the node until a termination signal; returns the process exit status. Errors that
// stop the node (a port in use, an unreadable data directory) are logged and give 1.
Task<int> run_daemon(DaemonConfig config);

}  // namespace uraft::kv
