// raft_bench: what consensus costs on this machine. A whole Raft group runs in this process
// (every peer a Node with its own storage and endpoint), node 0 leads, and closed-loop clients
// on node 0's loop propose commands of --payload bytes: each client keeps --pipeline commands
// in flight and issues its next command the moment one is applied on the leader. Commands
// waiting in the same loop turn go into one log entry (up to --batch commands and
// --batch-bytes), so "commits" counts commands, and entries are reported beside them.
// Latency is the wall time from a command's issue to its apply on the leader.
// Baselines in the same run: loopback ping-pong RTT (udp/tcp) and the data directory's raw
// fdatasync rate (wal). See docs/performance.md.
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "bench/report.h"
#include "core/event.h"
#include "core/loop.h"
#include "core/scope.h"
#include "net/rpc_endpoint.h"
#include "net/sim_network.h"
#include "net/tcp_transport.h"
#include "net/udp_transport.h"
#include "raft/config.h"
#include "raft/mem_storage.h"
#include "raft/node.h"
#include "raft/wal_storage.h"

namespace uraft::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::uint64_t kCluster = 0x4AF7BE;
// The largest entry a UDP AppendEntries can carry with its framing (kUdpPayloadBytesMax is
// 65,477 bytes per datagram).
constexpr std::size_t kUdpEntryBytesMax = 48 * 1024;
// How often the leader's loop looks at the wall clock for the progress line and the end.
constexpr auto kMonitorInterval = 100ms;
constexpr auto kProgressInterval = 1s;
// Each peer's service snapshots (an empty state) once its log holds this many bytes, as a
// real service would: the logs and MemStorage stay small and their memory is reused.
constexpr std::size_t kCompactBytes = 8 << 20;

struct Options {
  unsigned peers = 3;
  std::string transport = "sim";
  std::string storage = "mem";
  std::string data_dir;            // --storage wal; empty: a fresh temp dir, removed after.
  bool keep_data = false;          // Leave the WAL directories behind.
  unsigned clients = 64;
  std::size_t payload = 256;
  double duration_s = 5;
  std::uint64_t ops = 0;          // Commands to commit; 0: run for duration_s.
  double warmup_s = 0.5;          // Not counted (duration runs only).
  std::size_t batch = 1024;       // Commands per entry, at most.
  std::size_t batch_bytes = 1 << 20;
  unsigned pipeline = 1;          // Commands in flight per client.
  std::size_t window = 0;         // AppendEntries in flight per follower (0: Config's).
  std::size_t append_bytes = 0;   // Bytes per AppendEntries (0: Config's).
  unsigned threads = 1;           // Loops (threads) the peers are spread over (udp, tcp).
  std::string json;
  bool progress = false;
  bool no_baseline = false;
};

// --- latency histogram: 64 linear sub-buckets per power of two (error < 1.6%) ----------

class Histogram {
 public:
  void record(std::uint64_t ns) {
    ++counts_[bucket(ns)];
    ++total_;
    max_ = std::max(max_, ns);
  }
  std::uint64_t total() const { return total_; }
  std::uint64_t max() const { return max_; }
  // The value below which a fraction p of the samples fall (a bucket's upper edge).
  std::uint64_t percentile(double p) const {
    if (total_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(p * static_cast<double>(total_ - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(upper(i), max_);
    }
    return max_;
  }

 private:
  static constexpr unsigned kSubBits = 6;
  static constexpr std::uint64_t kSub = 1u << kSubBits;
  static std::size_t bucket(std::uint64_t v) {
    if (v < kSub) return v;
    const unsigned e = 63u - static_cast<unsigned>(std::countl_zero(v));
    const std::uint64_t sub = (v >> (e - kSubBits)) & (kSub - 1);
    return (e - kSubBits + 1) * kSub + sub;
  }
  static std::uint64_t upper(std::size_t i) {
    if (i < kSub) return i;
    const std::size_t e = i / kSub + kSubBits - 1;
    const std::uint64_t sub = i % kSub;
    return ((kSub + sub + 1) << (e - kSubBits)) - 1;
  }
  std::vector<std::uint64_t> counts_ = std::vector<std::uint64_t>((64 - kSubBits + 1) * kSub, 0);
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

// --- the group ------------------------------------------------------------------------

struct Peer {
  NodeId id;
  std::unique_ptr<Storage> storage;
  MemStorage* mem = nullptr;            // When storage is a MemStorage.
  WalStorage* wal = nullptr;            // When storage is a WalStorage (closed before freeing).
  std::unique_ptr<Transport> transport;  // udp/tcp.
  std::unique_ptr<TransportRpc> rpc;
  RpcEndpoint* endpoint = nullptr;
  std::unique_ptr<Node> node;
  std::uint64_t storage_writes = 0;  // Read when the peer stops.
};

// Counters read at the start and the end of the measured interval.
struct Sample {
  Clock::time_point at;
  std::uint64_t commands = 0;
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
};

// The closed-loop clients, the proposer and the completer, on the leader's loop.
struct Workload {
  Options opt;
  Node* leader = nullptr;
  std::size_t entry_commands_max = 1;
  // Slots: one per command a client may have in flight (clients x pipeline).
  std::vector<Clock::time_point> issued;  // When each slot's current command was issued.
  std::deque<std::uint32_t> ready;        // Slots whose next command awaits the proposer.
  std::deque<std::uint32_t> proposed;     // Slots in proposal order.
  struct Batch {
    LogIndex index;
    std::uint32_t commands;
  };
  std::deque<Batch> batches;  // Entries proposed, not yet applied, in index order.
  Event wake;                 // Slots became ready.
  Event done;                 // The measured run is over.
  bool finished = false;
  std::string error;

  Histogram latency;
  Sample now_count;  // Running totals.
  Sample start;      // At the end of the warm-up.
  Sample end;
  bool measuring = false;
  Clock::time_point began;
  Clock::time_point last_progress;
  Sample last_progress_count;
  std::uint64_t check_countdown = 0;
};

void finish(Workload& w, Clock::time_point now) {
  if (w.finished) return;
  w.finished = true;
  w.end = w.now_count;
  w.end.at = now;
  if (!w.measuring) {  // Ended inside the warm-up (e.g. a tiny --ops): measure all of it.
    w.start = Sample{w.began, 0, 0, 0};
  }
  w.done.set();
  w.wake.set();
}

void print_progress(Workload& w, Clock::time_point now, bool final_line) {
  const double dt = std::chrono::duration<double>(now - w.last_progress).count();
  const double rate =
      dt > 0 ? static_cast<double>(w.now_count.commands - w.last_progress_count.commands) / dt : 0;
  const double elapsed = std::chrono::duration<double>(now - w.began).count();
  std::fprintf(stderr, "\r%8.1f s  %12.0f commits/s  commit index %-12llu  p99 %8.1f us   %s",
               elapsed, rate,
               static_cast<unsigned long long>(w.leader->commit_index().value),
               static_cast<double>(w.latency.percentile(0.99)) / 1e3, final_line ? "\n" : "");
  std::fflush(stderr);
  w.last_progress = now;
  w.last_progress_count = w.now_count;
}

// Starts measuring after the warm-up; ends the run; prints progress. Cheap enough per entry.
void check_clock(Workload& w, Clock::time_point now) {
  if (w.finished) return;
  if (!w.measuring && (w.opt.ops > 0 || now - w.began >= std::chrono::duration<double>(
                                                             w.opt.warmup_s))) {
    w.measuring = true;
    w.start = w.now_count;
    w.start.at = now;
    w.latency = Histogram();
  }
  if (w.measuring) {
    const bool by_ops = w.opt.ops > 0 && w.now_count.commands - w.start.commands >= w.opt.ops;
    const bool by_time = w.opt.ops == 0 &&
                         now - w.start.at >= std::chrono::duration<double>(w.opt.duration_s);
    if (by_ops || by_time) finish(w, now);
  }
  if (w.opt.progress && now - w.last_progress >= kProgressInterval) print_progress(w, now, false);
}

Task<void> propose(Workload* w) {
  for (;;) {
    while (w->ready.empty() && !w->finished) {
      w->wake.reset();
      co_await w->wake.wait();
    }
    if (w->finished) co_return;
    while (!w->ready.empty()) {
      const std::size_t n = std::min(w->ready.size(), w->entry_commands_max);
      std::string command(n * w->opt.payload, 'c');
      const StartResult r = w->leader->start(std::move(command));
      if (!r.is_leader) {
        w->error = "node 0 lost its leadership during the run";
        finish(*w, Clock::now());
        co_return;
      }
      w->batches.push_back(Workload::Batch{r.index, static_cast<std::uint32_t>(n)});
      for (std::size_t i = 0; i < n; ++i) {
        w->proposed.push_back(w->ready.front());
        w->ready.pop_front();
      }
    }
  }
}

Task<void> compact_if_large(Node* node, LogIndex applied) {
  if (node->log_bytes() >= kCompactBytes) co_await node->snapshot(applied, std::string());
}

Task<void> complete(Workload* w) {
  for (;;) {
    std::optional<ApplyMsg> m = co_await w->leader->apply_channel().receive();
    if (!m) co_return;
    co_await compact_if_large(w->leader, m->index);
    if (m->kind != ApplyMsg::Kind::kCommand || w->batches.empty() ||
        m->index != w->batches.front().index) {
      continue;  // The leader's no-op, or a command from before the run.
    }
    const Clock::time_point now = Clock::now();
    const std::uint32_t n = w->batches.front().commands;
    w->batches.pop_front();
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t slot = w->proposed.front();
      w->proposed.pop_front();
      w->latency.record(static_cast<std::uint64_t>((now - w->issued[slot]).count()));
      w->issued[slot] = now;
      w->ready.push_back(slot);
    }
    w->now_count.commands += n;
    w->now_count.entries += 1;
    w->now_count.bytes += m->data.size();
    w->wake.set();
    check_clock(*w, now);
  }
}

// Ends the run even when nothing completes (a stalled group), and draws progress.
Task<void> monitor(Workload* w) {
  while (!w->finished) {
    co_await sleep_for(kMonitorInterval);
    const Clock::time_point now = Clock::now();
    check_clock(*w, now);
    const auto limit = std::chrono::duration<double>(w->opt.warmup_s + w->opt.duration_s + 30);
    if (!w->finished && w->opt.ops == 0 && now - w->began > limit) {
      w->error = "the run made no progress";
      finish(*w, now);
    }
  }
}

// (Not `while (co_await ...)`: g++ 12 never leaves that loop when the channel closes.)
Task<void> drain(Node* node) {
  for (;;) {
    std::optional<ApplyMsg> m = co_await node->apply_channel().receive();
    if (!m) break;
    co_await compact_if_large(node, m->index);
  }
}

// Waits (in the loop's time) until node 0 leads, at most 10 s.
Task<bool> wait_leader(Node* node) {
  for (int i = 0; i < 1000; ++i) {
    if (node->state().is_leader) co_return true;
    co_await sleep_for(10ms);
  }
  co_return false;
}

Config peer_config(const Options& opt, NodeId id) {
  Config c = Config::production();
  c.commit_noop_on_election = true;
  // Node 0 stands first and, with nobody else in a hurry, wins.
  if (id == NodeId{0}) {
    c.election_timeout_min = 2 * c.heartbeat_interval + 10ms;
    c.election_timeout_max = c.election_timeout_min + 10ms;
  } else {
    c.election_timeout_min = 2s;
    c.election_timeout_max = 3s;
  }
  if (opt.window > 0) c.inflight_max = opt.window;
  if (opt.append_bytes > 0) c.append_bytes_max = opt.append_bytes;
  if (opt.transport == "udp") c.append_bytes_max = std::min(c.append_bytes_max, kUdpEntryBytesMax);
  return c;
}

// Each peer's WAL lives in its own subdirectory of --data-dir.
std::string peer_dir(const std::string& data_dir, NodeId id) {
  return data_dir + "/peer-" + std::to_string(id.value);
}

Task<std::unique_ptr<Storage>> open_storage(Options opt, NodeId id, Peer* peer) {
  if (opt.storage == "mem") {
    auto s = std::make_unique<MemStorage>();
    peer->mem = s.get();
    co_return s;
  }
  WalOptions options;
  std::unique_ptr<WalStorage> wal =
      co_await WalStorage::open(peer_dir(opt.data_dir, id), std::move(options));
  peer->wal = wal.get();
  co_return wal;
}

// The storage's write count: log writes for MemStorage, group commits (one fdatasync
// each) for WalStorage.
std::uint64_t storage_writes(const Peer& p) {
  if (p.mem) return p.mem->writes();
  if (p.wal) return p.wal->stats().groups;
  return 0;
}

struct Group {
  Options opt;
  std::vector<Peer> peers;
  Workload work;
  std::string error;
};

Task<void> run_workload(Group* g) {
  Workload& w = g->work;
  w.opt = g->opt;
  w.leader = g->peers[0].node.get();
  if (!co_await wait_leader(w.leader)) {
    g->error = "node 0 was not elected within 10 s";
    co_return;
  }
  w.entry_commands_max =
      std::max<std::size_t>(1, std::min(g->opt.batch, g->opt.batch_bytes / g->opt.payload));
  if (g->opt.transport == "udp") {
    w.entry_commands_max =
        std::max<std::size_t>(1, std::min(w.entry_commands_max, kUdpEntryBytesMax / g->opt.payload));
  }
  const std::size_t slots = std::size_t{g->opt.clients} * g->opt.pipeline;
  w.began = w.last_progress = Clock::now();
  w.issued.assign(slots, w.began);
  for (std::uint32_t i = 0; i < slots; ++i) w.ready.push_back(i);
  Scope tasks;
  tasks.spawn(propose(&w));
  tasks.spawn(complete(&w));
  tasks.spawn(monitor(&w));
  co_await w.done.wait();
  if (g->opt.progress) print_progress(w, Clock::now(), true);
  if (!w.error.empty()) g->error = w.error;
  tasks.cancel();
  co_await tasks.join();
}

// --- sim: every peer on one simulated loop, over SimNetwork (reliable, no delays) ----------

Task<void> run_sim(Group* g) {
  const std::size_t n = g->opt.peers;
  SimNetwork net(n);
  net.set_reliable(true);
  net.set_long_delays(false);
  net.set_long_reordering(false);
  Scope nodes;
  for (std::uint32_t i = 0; i < n; ++i) {
    Peer& p = g->peers[i];
    p.id = NodeId{i};
    p.storage = co_await open_storage(g->opt, p.id, &p);
    RecoveredState recovered = co_await p.storage->load();
    p.endpoint = &net.endpoint(p.id);
    p.node = std::make_unique<Node>(p.id, n, *p.endpoint, *p.storage, peer_config(g->opt, p.id),
                                    std::move(recovered));
    nodes.spawn(p.node->run());
    if (i != 0) nodes.spawn(drain(p.node.get()));
  }
  for (std::uint32_t i = 0; i < n; ++i) net.connect(NodeId{i});
  try {
    co_await run_workload(g);
  } catch (const std::exception& e) {
    g->error = e.what();
  }
  for (Peer& p : g->peers) {
    p.storage_writes = storage_writes(p);
    p.node->kill();
  }
  co_await nodes.join();
  co_await net.close();
}

// --- udp/tcp: peers spread over `threads` io_uring loops, one thread each -------------------

struct Shared {
  std::vector<SocketAddress> addresses;  // Filled by each thread before the barrier.
  std::atomic<unsigned> bound{0};
  std::atomic<bool> stop{false};
  std::atomic<unsigned> stopped{0};
};

std::unique_ptr<Transport> open_transport(const std::string& kind, TransportOptions options) {
  std::error_code error;
  std::unique_ptr<Transport> t;
  if (kind == "udp") {
    t = UdpTransport::open(std::move(options), error);
  } else {
    t = TcpTransport::open(std::move(options), error);
  }
  if (!t) throw std::runtime_error("opening a transport: " + error.message());
  return t;
}

Task<void> run_real(Group* g, Shared* shared, unsigned thread) {
  const std::size_t n = g->opt.peers;
  std::vector<std::uint32_t> mine;
  for (std::uint32_t i = 0; i < n; ++i) {
    if (i % g->opt.threads == thread) mine.push_back(i);
  }
  for (std::uint32_t i : mine) {
    Peer& p = g->peers[i];
    p.id = NodeId{i};
    TransportOptions options;
    options.self = p.id;
    options.cluster_id = kCluster;
    p.transport = open_transport(g->opt.transport, std::move(options));
    shared->addresses[i] = p.transport->local_address();
    shared->bound.fetch_add(1);
  }
  // Every peer's address is known once every thread has bound its sockets.
  while (shared->bound.load() < n) co_await sleep_for(1ms);
  Scope nodes;
  for (std::uint32_t i : mine) {
    Peer& p = g->peers[i];
    for (std::uint32_t j = 0; j < n; ++j) {
      if (j != i) p.transport->set_peer(NodeId{j}, shared->addresses[j]);
    }
    p.rpc = std::make_unique<TransportRpc>(*p.transport);
    p.endpoint = p.rpc.get();
    p.storage = co_await open_storage(g->opt, p.id, &p);
    RecoveredState recovered = co_await p.storage->load();
    p.node = std::make_unique<Node>(p.id, n, *p.endpoint, *p.storage, peer_config(g->opt, p.id),
                                    std::move(recovered));
    nodes.spawn(p.node->run());
    if (i != 0) nodes.spawn(drain(p.node.get()));
  }
  if (thread == 0) {
    co_await run_workload(g);
    shared->stop.store(true);
  } else {
    while (!shared->stop.load()) co_await sleep_for(10ms);
  }
  for (std::uint32_t i : mine) {
    Peer& p = g->peers[i];
    p.storage_writes = storage_writes(p);
    p.node->kill();
  }
  co_await nodes.join();
  for (std::uint32_t i : mine) {
    Peer& p = g->peers[i];
    if (p.wal) co_await p.wal->close();
  }
  // A peer still sending to one that closed only logs a failed connection.
  shared->stopped.fetch_add(1);
  while (shared->stopped.load() < g->opt.threads) co_await sleep_for(1ms);
  for (std::uint32_t i : mine) {
    Peer& p = g->peers[i];
    co_await p.rpc->close();
    co_await p.transport->close();
  }
}

// --- baselines ---------------------------------------------------------------------------

struct Baseline {
  std::string name;
  double value = 0;
  std::string unit;
};

// Round trips of `bytes` between two blocking sockets on 127.0.0.1, one thread echoing.
std::optional<double> loopback_rtt_us(bool udp, std::size_t bytes, int rounds) {
  const int type = udp ? SOCK_DGRAM : SOCK_STREAM;
  const int server = ::socket(AF_INET, type, 0);
  if (server < 0) return std::nullopt;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(server, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      (!udp && ::listen(server, 1) != 0)) {
    ::close(server);
    return std::nullopt;
  }
  const int client = ::socket(AF_INET, type, 0);
  if (client < 0 || ::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(server);
    if (client >= 0) ::close(client);
    return std::nullopt;
  }
  int one = 1;
  if (!udp) ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::thread echo([&] {
    int fd = server;
    if (!udp) {
      fd = ::accept(server, nullptr, nullptr);
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    std::vector<char> buf(bytes);
    for (int r = 0; r < rounds; ++r) {
      sockaddr_in from{};
      socklen_t from_len = sizeof from;
      std::size_t got = 0;
      while (got < bytes) {
        const ssize_t k = ::recvfrom(fd, buf.data() + got, bytes - got, 0,
                                     reinterpret_cast<sockaddr*>(&from), &from_len);
        if (k <= 0) return;
        got += static_cast<std::size_t>(k);
        if (udp) break;
      }
      if (::sendto(fd, buf.data(), got, 0, udp ? reinterpret_cast<sockaddr*>(&from) : nullptr,
                   udp ? from_len : 0) < 0) {
        return;
      }
    }
    if (!udp) ::close(fd);
  });
  std::vector<char> buf(bytes, 'p');
  std::vector<double> samples;
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = Clock::now();
    if (::send(client, buf.data(), bytes, 0) < 0) break;
    std::size_t got = 0;
    while (got < bytes) {
      const ssize_t k = ::recv(client, buf.data() + got, bytes - got, 0);
      if (k <= 0) break;
      got += static_cast<std::size_t>(k);
      if (udp) break;
    }
    samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  ::shutdown(client, SHUT_RDWR);
  ::close(client);
  echo.join();
  ::close(server);
  if (samples.empty()) return std::nullopt;
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

// 4 KiB writes, each followed by fdatasync, for about 1 s in `dir`: the physical bound on
// commits/s with --storage wal and one client.
std::optional<double> fdatasync_per_s(const std::string& dir) {
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/raft_bench_fdatasync.tmp";
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (fd < 0) return std::nullopt;
  std::vector<char> block(4096, 'f');
  const auto t0 = Clock::now();
  int n = 0;
  while (Clock::now() - t0 < 1s && n < 100000) {
    if (::write(fd, block.data(), block.size()) < 0 || ::fdatasync(fd) != 0) break;
    ++n;
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  ::close(fd);
  ::unlink(path.c_str());
  if (n == 0) return std::nullopt;
  return n / s;
}

// --- report --------------------------------------------------------------------------------

struct Report {
  double seconds = 0;
  std::uint64_t commands = 0;
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
  double commits_per_s = 0;
  double entries_per_s = 0;
  double bytes_per_s = 0;
  double p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
  std::uint64_t storage_writes = 0;    // All peers, the whole run.
  std::uint64_t entries_written = 0;   // All peers, the whole run.
  std::uint64_t append_requests = 0;   // Leader, the whole run.
  std::uint64_t append_entries = 0;
  std::uint64_t heartbeats = 0;
  double total_seconds = 0;            // Whole run (for the per-second storage rates).
  double writes_per_s = 0;
  double entries_per_write = 0;
  double entries_per_append = 0;
};

Report make_report(const Group& g, double total_seconds) {
  const Workload& w = g.work;
  Report r;
  r.seconds = std::chrono::duration<double>(w.end.at - w.start.at).count();
  r.commands = w.end.commands - w.start.commands;
  r.entries = w.end.entries - w.start.entries;
  r.bytes = w.end.bytes - w.start.bytes;
  if (r.seconds > 0) {
    r.commits_per_s = static_cast<double>(r.commands) / r.seconds;
    r.entries_per_s = static_cast<double>(r.entries) / r.seconds;
    r.bytes_per_s = static_cast<double>(r.bytes) / r.seconds;
  }
  r.p50_us = static_cast<double>(w.latency.percentile(0.50)) / 1e3;
  r.p99_us = static_cast<double>(w.latency.percentile(0.99)) / 1e3;
  r.p999_us = static_cast<double>(w.latency.percentile(0.999)) / 1e3;
  r.max_us = static_cast<double>(w.latency.max()) / 1e3;
  for (const Peer& p : g.peers) {
    r.storage_writes += p.storage_writes;
    r.entries_written += p.node->stats().log_entries_written;
  }
  const Node::Stats s = g.peers[0].node->stats();
  r.append_requests = s.append_requests;
  r.append_entries = s.append_entries;
  r.heartbeats = s.heartbeats;
  r.total_seconds = total_seconds;
  if (total_seconds > 0) r.writes_per_s = static_cast<double>(r.storage_writes) / total_seconds;
  if (r.storage_writes > 0) {
    r.entries_per_write = static_cast<double>(r.entries_written) / static_cast<double>(r.storage_writes);
  }
  if (r.append_requests > 0) {
    r.entries_per_append = static_cast<double>(r.append_entries) / static_cast<double>(r.append_requests);
  }
  return r;
}

void print_report(const Options& o, const Report& r, const std::vector<Baseline>& baselines) {
  std::printf("raft_bench: %u peers, transport %s, storage %s, %u clients x %u in flight, "
              "payload %zu B\n",
              o.peers, o.transport.c_str(), o.storage.c_str(), o.clients, o.pipeline, o.payload);
  std::printf("  measured      %.2f s, %llu commands in %llu entries (%.1f commands/entry)\n",
              r.seconds, static_cast<unsigned long long>(r.commands),
              static_cast<unsigned long long>(r.entries),
              r.entries ? static_cast<double>(r.commands) / static_cast<double>(r.entries) : 0.0);
  std::printf("  throughput    %.0f commits/s, %.0f entries/s, %.1f MB/s\n", r.commits_per_s,
              r.entries_per_s, r.bytes_per_s / 1e6);
  std::printf("  latency       p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n", r.p50_us,
              r.p99_us, r.p999_us, r.max_us);
  std::printf("  storage       %.0f %s/s (all peers), %.1f entries per %s\n", r.writes_per_s,
              o.storage == "wal" ? "fsyncs" : "log writes", r.entries_per_write,
              o.storage == "wal" ? "fsync" : "write");
  std::printf("  replication   %.1f entries per AppendEntries (%llu with entries, %llu empty)\n",
              r.entries_per_append, static_cast<unsigned long long>(r.append_requests),
              static_cast<unsigned long long>(r.heartbeats));
  for (const Baseline& b : baselines) {
    std::printf("  baseline      %s: %.1f %s\n", b.name.c_str(), b.value, b.unit.c_str());
  }
}

bool write_json(const Options& o, const Report& r, const std::vector<Baseline>& baselines) {
  std::ofstream out(o.json);
  if (!out) return false;
  out << "{\n  \"program\": \"raft_bench\",\n  \"date\": " << json_string(utc_timestamp()) << ",\n";
  out << "  \"config\": {\"peers\": " << o.peers << ", \"transport\": " << json_string(o.transport)
      << ", \"storage\": " << json_string(o.storage) << ", \"clients\": " << o.clients
      << ", \"pipeline\": " << o.pipeline << ", \"payload\": " << o.payload
      << ", \"duration_s\": " << o.duration_s << ", \"ops\": " << o.ops
      << ", \"warmup_s\": " << o.warmup_s << ", \"batch\": " << o.batch
      << ", \"batch_bytes\": " << o.batch_bytes << ", \"window\": " << o.window
      << ", \"append_bytes\": " << o.append_bytes << ", \"threads\": " << o.threads << "},\n";
  out << "  \"machine\": " << machine_json() << ",\n";
  out << "  \"results\": {\"seconds\": " << r.seconds << ", \"commands\": " << r.commands
      << ", \"entries\": " << r.entries << ", \"bytes\": " << r.bytes
      << ", \"commits_per_s\": " << r.commits_per_s << ", \"entries_per_s\": " << r.entries_per_s
      << ", \"bytes_per_s\": " << r.bytes_per_s << ", \"latency_us\": {\"p50\": " << r.p50_us
      << ", \"p99\": " << r.p99_us << ", \"p999\": " << r.p999_us << ", \"max\": " << r.max_us
      << "}, \"storage_writes_per_s\": " << r.writes_per_s
      << ", \"entries_per_storage_write\": " << r.entries_per_write
      << ", \"entries_per_append\": " << r.entries_per_append
      << ", \"append_requests\": " << r.append_requests << ", \"heartbeats\": " << r.heartbeats
      << "},\n  \"baselines\": {";
  for (std::size_t i = 0; i < baselines.size(); ++i) {
    out << (i ? ", " : "") << json_string(baselines[i].name) << ": {\"value\": "
        << baselines[i].value << ", \"unit\": " << json_string(baselines[i].unit) << "}";
  }
  out << "}\n}\n";
  return static_cast<bool>(out);
}

// Makes --data-dir (a fresh temp dir when not given) and checks no peer directory is left
// from an earlier run: a recovered log would start node 0 with another term and history.
// Returns an error, or empty.
std::string prepare_data_dir(Options& opt, bool* made_temp) {
  *made_temp = false;
  if (opt.data_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/raft_bench.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return "cannot make a temp dir " + tmpl + ": " + std::strerror(errno);
    }
    opt.data_dir = tmpl;
    *made_temp = true;
    return "";
  }
  std::error_code ec;
  std::filesystem::create_directories(opt.data_dir, ec);
  if (ec) return "cannot make --data-dir " + opt.data_dir + ": " + ec.message();
  for (std::uint32_t i = 0; i < opt.peers; ++i) {
    const std::string dir = peer_dir(opt.data_dir, NodeId{i});
    if (std::filesystem::exists(dir)) {
      return dir + " exists (from an earlier run?): remove it or choose another --data-dir";
    }
  }
  return "";
}

// Removes what prepare_data_dir made or the run wrote, unless --keep-data.
void remove_data_dir(const Options& opt, bool made_temp) {
  if (opt.keep_data) {
    std::printf("  data          kept in %s\n", opt.data_dir.c_str());
    return;
  }
  std::error_code ec;
  if (made_temp) {
    std::filesystem::remove_all(opt.data_dir, ec);
    return;
  }
  for (std::uint32_t i = 0; i < opt.peers; ++i) {
    std::filesystem::remove_all(peer_dir(opt.data_dir, NodeId{i}), ec);
  }
}

int run_group(const Options& opt);

int run(Options opt) {
  if (opt.storage != "wal") return run_group(opt);
  if (opt.transport == "sim") {
    std::fprintf(stderr, "raft_bench: --storage wal needs --transport udp or tcp (WalStorage does "
                         "real file I/O; the sim loop runs on virtual time)\n");
    return 2;
  }
  bool made_temp = false;
  if (const std::string error = prepare_data_dir(opt, &made_temp); !error.empty()) {
    std::fprintf(stderr, "raft_bench: %s\n", error.c_str());
    return 2;
  }
  int rc = 1;
  try {
    rc = run_group(opt);
  } catch (...) {
    remove_data_dir(opt, made_temp);
    throw;
  }
  remove_data_dir(opt, made_temp);
  return rc;
}

int run_group(const Options& opt) {
  std::vector<Baseline> baselines;
  if (!opt.no_baseline) {
    if (opt.transport == "udp" || opt.transport == "tcp") {
      if (auto rtt = loopback_rtt_us(opt.transport == "udp", opt.payload, 2000)) {
        baselines.push_back(Baseline{opt.transport + " loopback ping-pong RTT p50 (" +
                                         std::to_string(opt.payload) + " B, blocking sockets)",
                                     *rtt, "us"});
      }
    }
    if (opt.storage == "wal") {
      if (auto rate = fdatasync_per_s(opt.data_dir)) {
        baselines.push_back(Baseline{"4 KiB write + fdatasync in " + opt.data_dir, *rate, "/s"});
      }
    }
  }
  Group g;
  g.opt = opt;
  g.peers.resize(opt.peers);
  const auto t0 = Clock::now();
  if (opt.transport == "sim") {
    auto loop = Loop::simulated({.seed = 1});
    loop->run(run_sim(&g));
  } else {
    Shared shared;
    shared.addresses.resize(opt.peers);
    std::vector<std::thread> threads;
    std::vector<std::string> errors(opt.threads);
    for (unsigned t = 0; t < opt.threads; ++t) {
      threads.emplace_back([&g, &shared, &errors, t] {
        try {
          auto loop = Loop::uring();
          loop->run(run_real(&g, &shared, t));
        } catch (const std::exception& e) {
          errors[t] = e.what();
          shared.stop.store(true);
          shared.bound.store(1000000);
          shared.stopped.store(1000000);
        }
      });
    }
    for (std::thread& t : threads) t.join();
    for (const std::string& e : errors) {
      if (!e.empty() && g.error.empty()) g.error = e;
    }
  }
  const double total = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!g.error.empty()) {
    std::fprintf(stderr, "raft_bench: %s\n", g.error.c_str());
    return 1;
  }
  const Report r = make_report(g, total);
  print_report(opt, r, baselines);
  if (!opt.json.empty() && !write_json(opt, r, baselines)) {
    std::fprintf(stderr, "raft_bench: cannot write %s\n", opt.json.c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace uraft::bench

int main(int argc, char** argv) {
  using uraft::bench::Options;
  Options opt;
  CLI::App app{"raft_bench: a whole Raft group in one process; node 0 leads and closed-loop "
               "clients propose commands to it. Reports commits/s (commands), latency from "
               "issue to apply on the leader, storage and replication batching."};
  app.add_option("--peers", opt.peers, "Peers in the group")->check(CLI::IsMember({1, 3, 5}));
  app.add_option("--transport", opt.transport, "sim (one simulated loop), udp or tcp (127.0.0.1)")
      ->check(CLI::IsMember({"sim", "udp", "tcp"}));
  app.add_option("--storage", opt.storage, "mem (MemStorage) or wal (WalStorage in --data-dir)")
      ->check(CLI::IsMember({"mem", "wal"}));
  app.add_option("--data-dir", opt.data_dir,
                 "Where --storage wal keeps its files, one subdirectory per peer (default: a "
                 "fresh directory under $TMPDIR or /tmp, removed at the end)");
  app.add_flag("--keep-data", opt.keep_data,
               "Leave the WAL directories behind (default: remove what this run wrote)");
  app.add_option("--clients", opt.clients, "Closed-loop clients")->check(CLI::Range(1u, 100000u));
  app.add_option("--payload", opt.payload, "Bytes per command")->check(CLI::Range(1, 1 << 20));
  app.add_option("--duration", opt.duration_s, "Seconds to measure (after --warmup)")
      ->check(CLI::PositiveNumber);
  app.add_option("--ops", opt.ops, "Commands to measure instead of a duration (no warm-up)");
  app.add_option("--warmup", opt.warmup_s, "Seconds run before measuring")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--batch", opt.batch, "Commands per log entry, at most (1: one entry each)")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--batch-bytes", opt.batch_bytes, "Command bytes per log entry, at most")
      ->check(CLI::Range(1, 64 << 20));
  app.add_option("--pipeline", opt.pipeline, "Commands each client keeps in flight")
      ->check(CLI::Range(1u, 4096u));
  app.add_option("--window", opt.window,
                 "AppendEntries in flight per follower (default: Config::production)");
  app.add_option("--append-bytes", opt.append_bytes,
                 "Entry bytes per AppendEntries (default: Config::production)");
  app.add_option("--threads", opt.threads, "Loops (threads) to spread the peers over (udp, tcp)")
      ->check(CLI::Range(1u, 5u));
  app.add_option("--json", opt.json, "Also write the configuration, machine and results here");
  app.add_flag("--no-baseline", opt.no_baseline, "Skip the RTT and fdatasync baselines");
  bool progress = isatty(STDERR_FILENO) != 0;
  app.add_flag("--progress,!--no-progress", progress,
               "Live progress line (default: when stderr is a terminal)");
  CLI11_PARSE(app, argc, argv);
  opt.progress = progress;
  if (opt.threads > opt.peers) opt.threads = opt.peers;
  if (opt.transport == "sim" && opt.threads != 1) {
    std::fprintf(stderr, "raft_bench: --transport sim runs every peer on one loop; "
                         "--threads applies to udp and tcp\n");
    return 2;
  }
  // Keep freed memory in the process: entries are allocated and freed at a high rate, and
  // giving the heap top back to the kernel each time costs a page fault per page later.
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  mallopt(M_TOP_PAD, 64 << 20);
  try {
    return uraft::bench::run(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raft_bench: %s\n", e.what());
    return 1;
  }
}
