#include "kv/daemon.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "core/io.h"
#include "core/loop.h"
#include "core/scope.h"
#include "kv/server.h"
#include "kv/service.h"
#include "net/rpc_endpoint.h"
#include "net/tcp_transport.h"
#include "raft/config.h"
#include "raft/mem_storage.h"
#include "raft/node.h"
#include "raft/wal_storage.h"

namespace uraft::kv {
namespace {

// A leader asked to stop hands its leadership over first, so the others need not wait an
// election timeout to notice it is gone. Bounded: an abandoned transfer takes one.
Task<void> hand_over_leadership(Node* node) {
  if (!node->state().is_leader) co_return;
  spdlog::info("leader: handing leadership over before stopping");
  const TimePoint started = Loop::current().now();
  const bool moved = co_await node->transfer_leadership() == TransferResult::kDone;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      Loop::current().now() - started).count();
  if (moved) {
    spdlog::info("leadership handed over in {} ms (term {})", ms, node->current_term().value);
  } else {
    spdlog::warn("leadership transfer did not complete in {} ms; stopping as leader", ms);
  }
}

// Waits for SIGTERM or SIGINT (blocked for the process and read from a signalfd, so the loop
// sees them as I/O), then cancels `scope`: everything the node runs stops in order. A leader
// (with `transfer`) first hands its leadership over.
Task<void> wait_for_signal(int signal_fd, Scope* scope, Node* node, bool transfer) {
  for (;;) {
    const IoResult r = co_await io::poll(signal_fd, POLLIN);
    if (!r.ok()) {
      spdlog::error("waiting for signals failed: {}", r.message());
      co_return;
    }
    signalfd_siginfo info{};
    if (::read(signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      spdlog::info("signal {}: stopping", info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
      if (transfer) co_await hand_over_leadership(node);
      scope->cancel();
      co_return;
    }
  }
}

// The parts of a node that need closing in order, whatever happened while it ran.
struct Parts {
  std::unique_ptr<Storage> storage;
  WalStorage* wal = nullptr;  // storage, when it is a WAL (it must be closed).
  std::unique_ptr<TcpTransport> transport;
  std::unique_ptr<TransportRpc> rpc;
};

Task<void> close_parts(Parts* parts) {
  if (parts->rpc) co_await parts->rpc->close();
  if (parts->transport) co_await parts->transport->close();
  if (parts->wal) co_await parts->wal->close();
}

// Everything between opening the storage and shutting down: returns the exit status.
Task<int> run_node(DaemonConfig config, Parts* parts, int signal_fd) {
  const NodeId self{config.id};
  TransportOptions transport_options;
  transport_options.self = self;
  transport_options.cluster_id = config.cluster_id;
  for (std::size_t i = 0; i < config.peers.size(); ++i) {
    const std::optional<SocketAddress> a = SocketAddress::parse(config.peers[i]);
    if (!a) {
      spdlog::critical("--peers: '{}' is not an ip:port address", config.peers[i]);
      co_return 2;
    }
    transport_options.addresses[NodeId{static_cast<std::uint32_t>(i)}] = *a;
  }
  transport_options.log = [](std::string_view text) { spdlog::warn("peers: {}", text); };

  const RecoveredState recovered = co_await parts->storage->load();
  spdlog::info("recovered term {}, vote {}, snapshot index {}, {} log entries",
               recovered.hard_state.current_term.value,
               recovered.hard_state.voted_for == kNoNode
                   ? std::string("none")
                   : std::to_string(recovered.hard_state.voted_for.value),
               recovered.snapshot ? recovered.snapshot->last_included_index.value : 0,
               recovered.entries.size());

  std::error_code error;
  parts->transport = TcpTransport::open(transport_options, error);
  if (!parts->transport) {
    spdlog::critical("cannot listen for peers on {}: {}", config.peers[config.id],
                     error.message());
    co_return 1;
  }
  parts->rpc = std::make_unique<TransportRpc>(*parts->transport);

  Config raft_config = Config::production();
  raft_config.lease_reads = config.lease_reads;
  Node node(self, config.peers.size(), *parts->rpc, *parts->storage, raft_config, recovered);
  ServiceOptions service_options;
  // Staggered by id (1x, 1.25x, 1.5x, 1.75x, ...): replicas reach their thresholds at
  // different times, so they do not all spend CPU and disk on a snapshot at once.
  service_options.snapshot_log_bytes =
      config.snapshot_log_bytes + config.snapshot_log_bytes / 4 * (config.id % 4);
  service_options.client_addresses = config.client_addresses;
  service_options.snapshot_in_child = config.snapshot_in_child;
  std::unique_ptr<Service> service;
  std::unique_ptr<Server> server;
  std::string failure;
  try {
    service = std::make_unique<Service>(node, *parts->rpc, std::move(service_options),
                                        recovered.snapshot);
    service->serve();
    ServerOptions server_options;
    server_options.bind = config.bind;
    server_options.port = config.port;
    server_options.requirepass = config.requirepass;
    server_options.clients_max = config.clients_max;
    server_options.cluster_id = config.cluster_id;
    server_options.storage = config.storage == StorageKind::kWal ? "wal" : "mem";
    server_options.data_dir = config.data_dir;
    server = Server::listen(*service, std::move(server_options), error);
    if (server) server->set_peer_transport(parts->transport.get());
    if (!server) {
      failure = "cannot listen for clients on " + config.bind + ":" + std::to_string(config.port) +
                ": " + error.message();
    }
  } catch (const std::exception& e) {
    failure = e.what();
  }

  int status = 0;
  Scope scope(co_await current_token());
  if (failure.empty()) {
    spdlog::info("node {} of {} serving clients on {}:{}, peers on {} (cluster id {}, storage {})",
                 config.id, config.peers.size(), config.bind, server->port(),
                 parts->transport->local_address().to_string(), config.cluster_id,
                 config.storage == StorageKind::kWal ? "wal" : "mem");
    scope.spawn(node.run());
    scope.spawn(service->run());
    scope.spawn(server->run());
    scope.spawn(wait_for_signal(signal_fd, &scope, &node, config.transfer_on_stop));
  } else {
    spdlog::critical("{}", failure);
    status = 1;
    node.kill();
    scope.spawn(node.run());
    if (service) scope.spawn(service->run());
  }
  std::exception_ptr stopped;
  try {
    co_await scope.join();
  } catch (...) {
    stopped = std::current_exception();
  }
  if (stopped) {
    try {
      std::rethrow_exception(stopped);
    } catch (const std::exception& e) {
      spdlog::critical("node stopped: {}", e.what());
    }
    status = 1;
  }
  co_return status;
}

}  // namespace

Task<int> run_daemon(DaemonConfig config) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  ::sigprocmask(SIG_BLOCK, &signals, nullptr);
  const int signal_fd = ::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd < 0) {
    spdlog::critical("signalfd: {}", std::error_code(errno, std::generic_category()).message());
    co_return 1;
  }

  Parts parts;
  int status = 1;
  std::exception_ptr error;
  try {
    if (config.storage == StorageKind::kWal) {
      WalOptions options;
      options.warn = [](std::string_view text) { spdlog::warn("wal: {}", text); };
      std::unique_ptr<WalStorage> wal = co_await WalStorage::open(config.data_dir, options);
      parts.wal = wal.get();
      parts.storage = std::move(wal);
    } else {
      parts.storage = std::make_unique<MemStorage>();
    }
    status = co_await run_node(config, &parts, signal_fd);
  } catch (...) {
    error = std::current_exception();
  }
  co_await close_parts(&parts);
  ::close(signal_fd);
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      spdlog::critical("{}", e.what());
    }
    co_return 1;
  }
  spdlog::info("stopped");
  co_return status;
}

}  // namespace uraft::kv
