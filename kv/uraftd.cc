// uraftd: one node of a replicated, linearizable key-value store that speaks RESP2, so any
// Redis client can use it. This file parses the command line and sets up logging; the node
// itself is kv/daemon.cc. scripts/cluster.sh starts a local cluster of them.
#include <spdlog/spdlog.h>

#include <malloc.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <string>

#include "core/loop.h"
#include "kv/daemon.h"

int main(int argc, char** argv) {
  using uraft::kv::DaemonConfig;
  using uraft::kv::StorageKind;
  DaemonConfig config;
  std::string storage = "wal";
  std::string log_level = "info";

  CLI::App app{
      "uraftd: one node of a replicated key-value store speaking the Redis protocol (RESP2).\n"
      "Writes go through Raft and are answered once applied; reads are linearizable (ReadIndex).\n"
      "A follower forwards requests to the leader. Example, node 0 of three:\n"
      "  uraftd --id 0 --peers 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 --port 6381 "
      "--data-dir /tmp/n0"};
  app.set_version_flag("--version", std::string("uraftd ") + URAFT_VERSION);
  app.add_option("--id", config.id, "This node's id: its position in --peers, from 0")->required();
  app.add_option("--peers", config.peers,
                 "Every node's peer (Raft) address ip:port, in id order, this node's included")
      ->required()
      ->delimiter(',');
  app.add_option("--client-addresses", config.client_addresses,
                 "Every node's client address ip:port, in id order (shown by INFO for the leader)")
      ->delimiter(',');
  app.add_option("--bind", config.bind, "Address the client port listens on")
      ->capture_default_str();
  app.add_option("--port", config.port, "Client (RESP) port")->capture_default_str();
  app.add_option("--data-dir", config.data_dir,
                 "Directory for the write-ahead log and snapshots (required with --storage wal)");
  app.add_option("--storage", storage, "wal: durable write-ahead log (fdatasync); mem: in memory, "
                                       "lost on exit (experiments only)")
      ->check(CLI::IsMember({"wal", "mem"}))
      ->capture_default_str();
  app.add_option("--cluster-id", config.cluster_id,
                 "Cluster id carried by every peer frame; peers with another id are rejected")
      ->capture_default_str();
  app.add_option("--requirepass", config.requirepass,
                 "Clients must AUTH with this password before any other command");
  app.add_option("--snapshot-log-bytes", config.snapshot_log_bytes,
                 "Snapshot the store once the log holds this many command bytes")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--clients-max", config.clients_max, "Connected clients at most")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--snapshot-in-child,!--no-snapshot-in-child", config.snapshot_in_child,
               "Serialize snapshots in a forked child while the node goes on applying (otherwise "
               "on a thread while writes wait)")
      ->capture_default_str();
  app.add_flag("--transfer-on-stop,!--no-transfer-on-stop", config.transfer_on_stop,
               "On SIGTERM/SIGINT a leader hands its leadership to a caught-up follower first")
      ->capture_default_str();
  app.add_flag("--lease-reads", config.lease_reads,
               "Leader reads without a quorum round while its lease holds (assumes clocks drift "
               "under 10% per election timeout; default: ReadIndex)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  config.storage = storage == "mem" ? StorageKind::kMem : StorageKind::kWal;
  if (config.id >= config.peers.size()) {
    std::fprintf(stderr, "uraftd: --id %u is not a position in --peers (%zu addresses)\n",
                 config.id, config.peers.size());
    return 2;
  }
  if (config.storage == StorageKind::kWal && config.data_dir.empty()) {
    std::fprintf(stderr, "uraftd: --storage wal needs --data-dir\n");
    return 2;
  }
  if (!config.client_addresses.empty() && config.client_addresses.size() != config.peers.size()) {
    std::fprintf(stderr, "uraftd: --client-addresses needs one address per peer (%zu)\n",
                 config.peers.size());
    return 2;
  }

  // Log entries, frames and replies are buffers of tens to hundreds of KiB allocated and freed
  // at a high rate: keep them in the heap instead of fresh mmaps (and their page faults), and
  // do not hand freed memory back to the kernel after every burst.
  ::mallopt(M_MMAP_THRESHOLD, 64 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 256 << 20);

  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e [node " + std::to_string(config.id) + "] %l: %v");
  spdlog::flush_on(spdlog::level::info);

  try {
    std::unique_ptr<uraft::Loop> loop = uraft::Loop::uring(
        uraft::LoopOptions{.seed = (std::uint64_t{config.id} << 32) ^ static_cast<std::uint64_t>(::getpid()),
                           .uring_entries = 1024});
    return loop->run(uraft::kv::run_daemon(std::move(config)));
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}
