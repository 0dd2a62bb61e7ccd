// SimNetwork: the MIT 6.824 labrpc network, on the simulated loop. Each node has an RpcEndpoint;
// calls between nodes suffer labrpc's faults (unreliable delays and loss, long reordering,
// disabled ends, dead servers), drawn from the loop's rng, so a run is a function of the seed.
// Partitions and per-link faults extend the model; while none is set it is labrpc exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/cancel.h"
#include "core/clock.h"
#include "core/event.h"
#include "core/task.h"
#include "net/message.h"
#include "net/rpc.h"
#include "net/types.h"

namespace uraft {

// Extra faults on one direction of one link: an extension, labrpc has none.
struct LinkFaults {
  Duration delay_min{};              // Each message on the link is delayed by a time drawn
  Duration delay_max{};              // uniformly from [delay_min, delay_max].
  std::uint32_t loss_per_mille = 0;  // Chance that a message on the link is lost, in 1/1000.
  std::uint32_t tail_per_mille = 0;  // Chance that the delay is drawn from [delay_max,
  Duration tail_max{};               // tail_max] instead: a heavy tail.
  // Chance that a Raft request is delivered twice (the copy's reply is lost). Raft's RPCs
  // must shrug off duplicates; a forwarded ClientRequest is not idempotent, and relies on
  // the transport never duplicating it (TCP does not), so it is never duplicated here.
  std::uint32_t duplicate_per_mille = 0;
  // With frames on (set_frames): chance that a bit of a message's frame flips on the way; the
  // frame's CRC must catch it (the message is then lost).
  std::uint32_t corrupt_per_mille = 0;

  friend bool operator==(const LinkFaults&, const LinkFaults&) = default;
};

// The labrpc model in brief (spec/raft-lab-tests.md §3). Every call counts toward
// total_count() and total_bytes() (its request's encoded size). If the caller's end is
// disabled, or the peer has no server, the call fails after 0-99 ms (0-6999 ms with long
// delays) and no handler runs. Otherwise, when unreliable, the request waits 0-26 ms and is
// lost 10% of the time (failing at once); the handler runs as its own task, while the call
// checks every 100 ms whether the end was disabled or the server deleted or replaced (then it
// fails at once); a dead server never gets a reply through. When unreliable, 10% of replies are
// lost; with long reordering, 2/3 of replies are delivered 200-2199 ms late. A delivered reply
// adds its encoded size to total_bytes(). Lab "false" is RpcError::kDropped; the caller's own
// timeout, if it comes first, is kTimeout; after close() calls fail with kClosed. As over a
// real transport, a request larger than a frame (kFramePayloadBytesMax) fails kUnreachable.
//
// Ends: labrpc has one ClientEnd per (client instance, server). Here node i's current
// endpoint holds i's ends, one per peer, each with an enable flag (all start disabled, as
// labrpc's MakeEnd). connect()/disconnect() are the tester's helpers over those flags.
// crash(i) retires i's endpoint, as start1 replaces the crashed instance's ends: the old
// instance keeps a reference that never reaches anyone again; the next instance takes
// endpoint(i) anew.
//
// Servers: endpoint(i).serve(h), or restart(i, h), is labrpc's AddServer: node i's server
// becomes h, a new server identity, so in-flight calls to the previous one fail. crash(i) is
// DeleteServer (plus retiring the ends); it also cancels the old server's running handlers
// and waits for them, so the caller may destroy the handler afterwards. (labrpc lets them
// run on; nothing the tester observes can tell the difference, since their replies never
// get through.)
//
// Single loop, single thread. All members are used from tasks on the loop; call close()
// before destroying the network once it has carried any traffic.
class SimNetwork {
 public:
  // labrpc's numbers (labrpc.go processReq), named.
  static constexpr std::uint64_t short_delay_ms_max = 26;        // rand.Int() % 27
  static constexpr std::uint64_t unreliable_loss_per_mille = 100;  // rand.Int()%1000 < 100
  static constexpr std::uint64_t reorder_chance_numerator = 600;   // rand.Intn(900) < 600
  static constexpr std::uint64_t reorder_chance_denominator = 900;
  static constexpr std::uint64_t reorder_delay_ms_min = 200;      // 200 + rand.Intn(1+rand.Intn(2000))
  static constexpr std::uint64_t reorder_spread_ms = 2000;
  static constexpr std::uint64_t long_delay_ms_bound = 7000;      // rand.Int() % 7000
  static constexpr std::uint64_t short_fail_delay_ms_bound = 100;  // rand.Int() % 100
  static constexpr Duration server_check_interval = std::chrono::milliseconds(100);

  explicit SimNetwork(std::size_t nodes);
  SimNetwork(const SimNetwork&) = delete;
  SimNetwork& operator=(const SimNetwork&) = delete;
  ~SimNetwork();

  std::size_t size() const noexcept { return nodes_.size(); }

  // Node i's current endpoint: its ends to every peer, and its server slot.
  RpcEndpoint& endpoint(NodeId id);

  // --- labrpc's per-end control and the tester's helpers (config.go connect/disconnect) ---
  // Enable or disable the end from node `from`'s current instance to `to` (labrpc Enable).
  void set_enabled(NodeId from, NodeId to, bool enabled);
  bool enabled(NodeId from, NodeId to) const;
  // config.go connect(i): mark i connected, then enable i->j and j->i for every connected j
  // (i itself included).
  void connect(NodeId id);
  // config.go disconnect(i): mark i disconnected and disable every end from and to it.
  void disconnect(NodeId id);
  bool connected(NodeId id) const;

  // --- network modes (labrpc Reliable, LongReordering, LongDelays); read when a call starts ---
  void set_reliable(bool reliable) noexcept { reliable_ = reliable; }
  void set_long_reordering(bool on) noexcept { long_reordering_ = on; }
  void set_long_delays(bool on) noexcept { long_delays_ = on; }
  bool reliable() const noexcept { return reliable_; }
  bool long_reordering() const noexcept { return long_reordering_; }
  bool long_delays() const noexcept { return long_delays_; }

  // --- servers (labrpc AddServer / DeleteServer) ---
  // DeleteServer(i), and node i's ends are replaced by fresh, disabled ones. Cancels the old
  // server's running handlers; completes once they have all finished.
  Task<void> crash(NodeId id);
  // AddServer(i, handler): the same as endpoint(i).serve(handler).
  void restart(NodeId id, RpcHandler* handler);

  // --- extensions: partitions and per-link faults (none by default) ---
  // Nodes in different groups cannot reach each other: their ends act disabled. A node in
  // no group is alone. Replaces any previous partition.
  void partition(const std::vector<std::vector<NodeId>>& groups);
  void heal();
  // Faults on messages from `from` to `to` (requests of from's calls, replies to to's calls).
  // LinkFaults{} clears them.
  void set_link(NodeId from, NodeId to, LinkFaults faults);

  // Every request and every delivered reply crosses as a real frame (net/frame.h): encoded,
  // exposed to the link's corruption, decoded; a frame that does not decode is lost and
  // counted. Off by default (the lab passes messages as they are).
  void set_frames(bool on) noexcept { frames_ = on; }
  std::uint64_t frames_refused() const noexcept { return frames_refused_; }

  // Sees every request as its handler starts (reply null) and every reply a handler returned
  // (with its request), whether or not the network then delivers it: a simulator's checkers
  // read the wire here rather than trusting what nodes say about themselves.
  using Tap =
      std::function<void(NodeId from, NodeId to, const Message& request, const Message* reply)>;
  void set_tap(Tap tap) { tap_ = std::move(tap); }

  // --- counters (labrpc GetCount, GetTotalCount, GetTotalBytes) ---
  // Handler invocations of node i's current server (0 if it has none).
  std::uint64_t rpc_count(NodeId id) const;
  std::uint64_t total_count() const noexcept { return total_count_; }
  // Request bytes of every call, plus reply bytes of every delivered reply (encoded sizes).
  std::uint64_t total_bytes() const noexcept { return total_bytes_; }

  // Labrpc Cleanup, made structured: later calls fail with kClosed; calls in progress return
  // kClosed at once (delayed deliveries are dropped); every handler task is cancelled. Completes
  // when no call and no handler task is left. Rethrows the first exception (other than
  // Cancelled) a handler threw, if any.
  Task<void> close();

 private:
  class Endpoint;
  struct Server;
  struct Dispatch;
  class Wait;
  struct CallGuard;

  struct Node {
    Endpoint* endpoint = nullptr;  // The current instance's ends; owned by endpoints_.
    Server* server = nullptr;      // Null: none added yet, or deleted. Owned by servers_.
    bool connected = false;        // config.go's connected[i].
    std::uint32_t group = 0;       // Partition group; all equal when healed.
  };

  Node& node(NodeId id);
  const Node& node(NodeId id) const;
  void install_server(NodeId id, RpcHandler* handler);
  Server* delete_server(NodeId id);
  void replace_ends(NodeId id);
  bool end_enabled(const Endpoint& end, NodeId to) const;
  bool server_dead(const Endpoint& end, NodeId to, const Server* server) const;
  const LinkFaults* link(NodeId from, NodeId to) const;
  std::size_t encoded_size(const Message& m);
  // With frames on: m as the receiver decodes it from its frame; false if the frame was
  // refused (corrupted on the way by `faults`, if any).
  bool cross_wire(Message& m, const LinkFaults* faults);

  Task<RpcResult> call(Endpoint* end, NodeId to, Message request, Duration timeout);
  Task<RpcResult> process_request(Endpoint* end, NodeId to, Message request, TimePoint deadline);
  static Task<void> dispatch(SimNetwork* net, Server* server, NodeId from, NodeId to,
                             Message request, std::shared_ptr<Dispatch> slot);

  // Declared first, destroyed last: every server's Scope and every waiting call hold a
  // callback on it.
  CancelSource closing_;
  std::vector<Node> nodes_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;  // Current and retired, never freed early.
  std::vector<std::unique_ptr<Server>> servers_;      // Current and deleted, never freed early:
                                                      // a Server's address is its identity.
  std::map<std::pair<std::uint32_t, std::uint32_t>, LinkFaults> links_;
  bool reliable_ = true;
  bool long_reordering_ = false;
  bool long_delays_ = false;
  bool closed_ = false;
  std::uint64_t total_count_ = 0;
  std::uint64_t total_bytes_ = 0;
  std::size_t calls_in_flight_ = 0;
  Event calls_idle_;  // Set while calls_in_flight_ == 0.
  std::exception_ptr handler_error_;
  std::string scratch_;  // Reused buffer for measuring encoded sizes.
  Tap tap_;
  bool frames_ = false;
  std::uint64_t frames_refused_ = 0;
  std::string frame_;  // Reused buffer for cross_wire.
};

}  // namespace uraft
