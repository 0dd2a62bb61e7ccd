// LabConfig: the C++ port of the Raft lab tester's config.go (2023), on the simulated loop,
// SimNetwork (labrpc's model) and MemStorage (the Persister). Method names follow Go's in
// snake_case; every wait is virtual time. The tester also runs ClusterInvariants on the
// cluster every few milliseconds and on every apply message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/scope.h"
#include "net/sim_network.h"
#include "raft/config.h"
#include "raft/invariants.h"
#include "raft/mem_storage.h"
#include "raft/node.h"
#include "raft/sim_storage.h"
#include "tests/raft/lab/lab.h"

namespace uraft::lab {

// config.go's SnapShotInterval: applierSnap snapshots after every 10th index.
inline constexpr std::int64_t kSnapShotInterval = 10;
// How often the tester checks the cluster's invariants (virtual time).
inline constexpr Duration kInvariantCheckInterval = 5ms;
// A hung test (one that never reaches end()) is stopped after this much virtual time.
inline constexpr int kVirtualTimeLimitSeconds = 600;

// The Persister: MemStorage (every write durable at once, the lab's own model) or, with
// `raft_lab --storage sim`, SimStorage (a crash loses a random part of what was not synced).
class Persister {
 public:
  explicit Persister(bool sim);
  // config.go's Copy(): the same content, in a new object the old instance cannot reach.
  std::unique_ptr<Persister> copy() const;
  // What a crashed server's successor gets: a copy, or (SimStorage) a crash of it.
  std::unique_ptr<Persister> crash_copy() const;
  Storage& storage() noexcept;
  const std::optional<SnapshotRecord>& snapshot() const noexcept;
  std::size_t raft_state_size() const noexcept;
  std::uint64_t writes_lost() const noexcept { return sim_ ? sim_->writes_lost() : 0; }

 private:
  Persister() = default;
  std::unique_ptr<MemStorage> mem_;
  std::unique_ptr<SimStorage> sim_;
};

class LabConfig {
 public:
  LabConfig(TestContext& t, int n, bool unreliable, bool snapshot);
  ~LabConfig();
  LabConfig(const LabConfig&) = delete;
  LabConfig& operator=(const LabConfig&) = delete;

  // make_config's second half: start1 and connect every server.
  Task<void> start_all();

  // --- config.go ---
  Task<void> crash1(int i);
  Task<void> start1(int i);  // With applierSnap if the config is for snapshots, else applier.
  void connect(int i);
  void disconnect(int i);
  bool connected(int i) const;
  Task<int> check_one_leader();
  int check_terms();
  void check_no_leader();
  // (count, value): how many servers applied `index`, and what.
  std::pair<int, Value> n_committed(std::int64_t index);
  Task<Value> wait(std::int64_t index, int n, std::int64_t start_term);
  Task<std::int64_t> one(Value cmd, int expected_servers, bool retry);
  void setunreliable(bool unrel);
  void setlongreordering(bool longrel);
  std::uint64_t rpc_count(int server) const;
  std::uint64_t rpc_total() const;
  std::uint64_t bytes_total() const;
  std::size_t log_size() const;  // LogSize(): max persisted raft state over servers.
  // Unsynced writes that crashes dropped (SimStorage only).
  std::uint64_t writes_lost() const noexcept { return writes_lost_; }
  void begin(const std::string& description);
  void end();
  Task<void> cleanup();
  bool check_finished() const { return finished_; }

  // time.Sleep, in virtual time; afterwards, an apply error or an invariant violation that
  // happened meanwhile fails the test here (Go's log.Fatalf would have ended the process).
  Task<void> sleep(Duration d);
  // The test's goroutines: joined by the test, or cancelled by cleanup() if it fails first.
  Scope& goroutines() { return goroutines_; }

  Node* raft(int i) const { return rafts_[static_cast<std::size_t>(i)].get(); }
  int n() const { return n_; }
  void check_fatal() const;

 private:
  struct Instance;  // A crashed node and its storage, kept until cleanup.

  [[noreturn]] void fatalf(const std::string& msg) const;
  void fatal_async(const std::string& msg);
  void check_timeout();
  std::pair<std::string, bool> check_logs(int i, const ApplyMsg& m);
  std::string ingest_snap(int i, const std::string& snapshot, std::int64_t index);
  // Shows server i's apply message to the invariant checker; on a violation fails the test
  // (fatal_async) and returns false, and the applier stops.
  bool invariants_hold(int i, std::uint64_t instance, const ApplyMsg& m);
  static Task<void> run_server(LabConfig* cfg, int i, Node* rf);
  static Task<void> applier(LabConfig* cfg, int i, Node* rf, std::uint64_t instance);
  static Task<void> applier_snap(LabConfig* cfg, int i, Node* rf, std::uint64_t instance);
  static Task<void> check_invariants_loop(LabConfig* cfg);
  void check_invariants();

  TestContext& t_;
  const int n_;
  const bool snapshot_;
  SimNetwork net_;
  std::vector<std::unique_ptr<Node>> rafts_;
  std::vector<std::unique_ptr<Persister>> saved_;
  std::vector<std::vector<std::optional<Value>>> logs_;  // logs[i][index]: what i applied.
  std::vector<std::string> apply_err_;
  std::vector<std::int64_t> last_applied_;
  std::vector<std::uint64_t> instance_;
  std::vector<Instance> dead_;
  TimePoint start_;
  TimePoint t0_;
  std::uint64_t rpcs0_ = 0;
  std::uint64_t bytes0_ = 0;
  std::int64_t max_index_ = 0;
  std::uint64_t writes_lost_ = 0;
  std::int64_t max_index0_ = 0;
  bool finished_ = false;
  std::optional<std::string> fatal_;  // The first apply error or invariant violation.
  ClusterInvariants invariants_;
  Scope servers_;     // Each node's run() and its applier.
  Scope goroutines_;  // The test's own concurrent tasks.
  Scope checker_;     // The invariant checker.
};

}  // namespace uraft::lab
