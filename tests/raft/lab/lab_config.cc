#include "tests/raft/lab/lab_config.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <utility>

#include "core/loop.h"
#include "net/varint.h"

namespace uraft::lab {
namespace {

NodeId node_id(int i) { return NodeId{static_cast<std::uint32_t>(i)}; }
std::size_t at(int i) { return static_cast<std::size_t>(i); }

double seconds_since(TimePoint t) {
  return std::chrono::duration<double>(Loop::current().now() - t).count();
}

// applierSnap's labgob encoding of (lastIncludedIndex, xlog), in a compact form of our own:
// varint index, varint count, then each value as a varint length and encode_value's bytes.
std::string encode_snapshot(std::int64_t index, const std::vector<std::optional<Value>>& xlog) {
  std::string out;
  put_varint(out, static_cast<std::uint64_t>(index));
  put_varint(out, xlog.size());
  for (const std::optional<Value>& v : xlog) {
    const std::string bytes = encode_value(v ? *v : Value{});
    put_varint(out, bytes.size());
    out += bytes;
  }
  return out;
}

bool decode_snapshot(const std::string& in, std::int64_t& index, std::vector<Value>& xlog) {
  std::span<const std::byte> rest = std::as_bytes(std::span(in.data(), in.size()));
  auto next = [&rest](std::uint64_t& v) {
    const VarintDecoded d = decode_varint(rest);
    if (d.status != VarintStatus::kOk) return false;
    v = d.value;
    rest = rest.subspan(d.bytes);
    return true;
  };
  std::uint64_t idx = 0;
  std::uint64_t count = 0;
  if (!next(idx) || !next(count)) return false;
  index = static_cast<std::int64_t>(idx);
  xlog.clear();
  for (std::uint64_t k = 0; k < count; ++k) {
    std::uint64_t len = 0;
    if (!next(len) || len > rest.size()) return false;
    xlog.push_back(decode_value(std::string_view(reinterpret_cast<const char*>(rest.data()),
                                                 static_cast<std::size_t>(len))));
    rest = rest.subspan(static_cast<std::size_t>(len));
  }
  return rest.empty();
}

}  // namespace

Persister::Persister(bool sim) {
  if (sim) {
    sim_ = std::make_unique<SimStorage>();
  } else {
    mem_ = std::make_unique<MemStorage>();
  }
}

std::unique_ptr<Persister> Persister::copy() const {
  std::unique_ptr<Persister> p(new Persister());
  if (sim_) {
    p->sim_ = sim_->copy();
  } else {
    p->mem_ = mem_->copy();
  }
  return p;
}

std::unique_ptr<Persister> Persister::crash_copy() const {
  if (!sim_) return copy();
  std::unique_ptr<Persister> p(new Persister());
  p->sim_ = sim_->crash(Loop::current().rng());
  return p;
}

Storage& Persister::storage() noexcept {
  if (sim_) return *sim_;
  return *mem_;
}
const std::optional<SnapshotRecord>& Persister::snapshot() const noexcept {
  return sim_ ? sim_->snapshot() : mem_->snapshot();
}
std::size_t Persister::raft_state_size() const noexcept {
  return sim_ ? sim_->raft_state_size() : mem_->raft_state_size();
}

struct LabConfig::Instance {
  std::unique_ptr<Node> node;
  std::unique_ptr<Persister> storage;
};

LabConfig::LabConfig(TestContext& t, int n, bool unreliable, bool snapshot)
    : t_(t),
      n_(n),
      snapshot_(snapshot),
      net_(at(n)),
      rafts_(at(n)),
      saved_(at(n)),
      logs_(at(n)),
      apply_err_(at(n)),
      last_applied_(at(n)),
      instance_(at(n)),
      start_(Loop::current().now()),
      invariants_(at(n), t.seed) {
  setunreliable(unreliable);
  net_.set_long_delays(true);
  checker_.spawn(check_invariants_loop(this));
}

LabConfig::~LabConfig() = default;

Task<void> LabConfig::start_all() {
  for (int i = 0; i < n_; ++i) co_await start1(i);
  for (int i = 0; i < n_; ++i) connect(i);
}

void LabConfig::fatalf(const std::string& msg) const { throw TestFailure(msg); }

void LabConfig::fatal_async(const std::string& msg) {
  if (!fatal_) fatal_ = msg;
}

void LabConfig::check_fatal() const {
  if (fatal_) fatalf(*fatal_);
}

Task<void> LabConfig::sleep(Duration d) {
  co_await sleep_for(d);
  check_fatal();
  // Go checks its 120 s limit only at the end; a test stuck in a loop ends here instead.
  if (seconds_since(start_) > kVirtualTimeLimitSeconds) {
    fatalf(cat("test still running after ", kVirtualTimeLimitSeconds, " s of virtual time"));
  }
}

// --- servers ---

// Shut down a Raft server but save its persistent state.
Task<void> LabConfig::crash1(int i) {
  disconnect(i);
  co_await net_.crash(node_id(i));  // Disable client connections to the server.
  // A fresh persister, in case the old instance continues to update the Persister, but with
  // the old one's content so that we always pass Make() the last persisted state.
  std::unique_ptr<Persister> old = std::move(saved_[at(i)]);
  if (old) {
    saved_[at(i)] = old->crash_copy();
    writes_lost_ += saved_[at(i)]->writes_lost() - old->writes_lost();
    t_.writes_lost += saved_[at(i)]->writes_lost() - old->writes_lost();
  }
  if (rafts_[at(i)]) {
    rafts_[at(i)]->kill();
    dead_.push_back(Instance{std::move(rafts_[at(i)]), std::move(old)});
  } else if (old) {
    dead_.push_back(Instance{nullptr, std::move(old)});
  }
  if (saved_[at(i)]) saved_[at(i)] = saved_[at(i)]->copy();  // config.go copies twice.
}

// Start or re-start a Raft. If one already exists, "kill" it first.
Task<void> LabConfig::start1(int i) {
  co_await crash1(i);
  // crash() gave node i a fresh set of ends, all disabled: the old instance cannot send.
  last_applied_[at(i)] = 0;
  if (saved_[at(i)]) {
    saved_[at(i)] = saved_[at(i)]->copy();
    const std::optional<SnapshotRecord>& snap = saved_[at(i)]->snapshot();
    if (snap && !snap->data.empty()) {
      // Mimic the KV server and process the snapshot now.
      const std::string err = ingest_snap(i, snap->data.str(), -1);
      if (!err.empty()) fatalf(err);
    }
  } else {
    saved_[at(i)] = std::make_unique<Persister>(t_.sim_storage);
  }
  const RecoveredState recovered = co_await saved_[at(i)]->storage().load();
  const std::uint64_t instance = ++instance_[at(i)];
  auto rf = std::make_unique<Node>(node_id(i), at(n_), net_.endpoint(node_id(i)), saved_[at(i)]->storage(),
                                   Config::lab(), recovered);  // AddServer.
  invariants_.on_start(node_id(i), instance, rf->log().snapshot_index(), recovered.hard_state);
  Node* raw = rf.get();
  rafts_[at(i)] = std::move(rf);
  servers_.spawn(run_server(this, i, raw));
  servers_.spawn(snapshot_ ? applier_snap(this, i, raw, instance)
                           : applier(this, i, raw, instance));
}

void LabConfig::connect(int i) { net_.connect(node_id(i)); }
void LabConfig::disconnect(int i) { net_.disconnect(node_id(i)); }
bool LabConfig::connected(int i) const { return net_.connected(node_id(i)); }

// A node's run(); a driver's error fails the test (it would stop only that node otherwise).
Task<void> LabConfig::run_server(LabConfig* cfg, int i, Node* rf) {
  try {
    co_await rf->run();
  } catch (const Cancelled&) {
    throw;
  } catch (const std::exception& e) {
    cfg->fatal_async(cat("raft server ", i, " failed: ", e.what()));
  }
}

// --- appliers ---

std::pair<std::string, bool> LabConfig::check_logs(int i, const ApplyMsg& m) {
  std::string err_msg;
  const Value v = decode_value(m.data);
  const std::size_t index = m.index.value;
  for (int j = 0; j < n_; ++j) {
    const auto& lj = logs_[at(j)];
    if (index < lj.size() && lj[index] && *lj[index] != v) {
      // Some server has already committed a different value for this entry!
      err_msg = cat("commit index=", index, " server=", i, " ", format_value(v), " != server=", j,
                    " ", format_value(*lj[index]));
    }
  }
  auto& li = logs_[at(i)];
  const bool prevok = index >= 1 && index - 1 < li.size() && li[index - 1].has_value();
  if (li.size() <= index) li.resize(index + 1);
  li[index] = v;
  max_index_ = std::max(max_index_, static_cast<std::int64_t>(index));
  return {err_msg, prevok};
}

bool LabConfig::invariants_hold(int i, std::uint64_t instance, const ApplyMsg& m) {
  try {
    invariants_.on_apply(node_id(i), instance, m);
    return true;
  } catch (const InvariantViolation& e) {
    fatal_async(e.what());
    return false;
  }
}

// Applied messages arrive here; every one is also shown to the invariant checker.
Task<void> LabConfig::applier(LabConfig* cfg, int i, Node* rf, std::uint64_t instance) {
  for (;;) {
    std::optional<ApplyMsg> m = co_await rf->apply_channel().receive();
    if (!m) co_return;
    if (!cfg->invariants_hold(i, instance, *m)) co_return;
    if (m->kind != ApplyMsg::Kind::kCommand) continue;  // Ignore other types of ApplyMsg.
    auto [err_msg, prevok] = cfg->check_logs(i, *m);
    if (m->index.value > 1 && !prevok) {
      err_msg = cat("server ", i, " apply out of order ", m->index.value);
    }
    if (!err_msg.empty()) {
      cfg->fatal_async(cat("apply error: ", err_msg));
      co_return;
    }
  }
}

// Returns "" or an error string.
std::string LabConfig::ingest_snap(int i, const std::string& snapshot, std::int64_t index) {
  std::int64_t last_included_index = 0;
  std::vector<Value> xlog;
  if (!decode_snapshot(snapshot, last_included_index, xlog)) {
    fatal_async("snapshot decode error");
    return "snapshot Decode() error";
  }
  if (index != -1 && index != last_included_index) {
    return cat("server ", i, " snapshot doesn't match m.SnapshotIndex");
  }
  auto& li = logs_[at(i)];
  li.assign(xlog.size(), std::nullopt);
  for (std::size_t j = 0; j < xlog.size(); ++j) li[j] = xlog[j];
  last_applied_[at(i)] = last_included_index;
  return "";
}

// The applier for snapshot tests: periodically snapshot the applied state.
Task<void> LabConfig::applier_snap(LabConfig* cfg, int i, Node* rf, std::uint64_t instance) {
  for (;;) {
    std::optional<ApplyMsg> m = co_await rf->apply_channel().receive();
    if (!m) co_return;
    if (!cfg->invariants_hold(i, instance, *m)) co_return;
    std::string err_msg;
    if (m->kind == ApplyMsg::Kind::kSnapshot) {
      err_msg = cfg->ingest_snap(i, m->snapshot.str(), static_cast<std::int64_t>(m->index.value));
    } else {
      const auto index = static_cast<std::int64_t>(m->index.value);
      if (index != cfg->last_applied_[at(i)] + 1) {
        err_msg = cat("server ", i, " apply out of order, expected index ",
                      cfg->last_applied_[at(i)] + 1, ", got ", index);
      }
      if (err_msg.empty()) {
        bool prevok = false;
        std::tie(err_msg, prevok) = cfg->check_logs(i, *m);
        if (index > 1 && !prevok) err_msg = cat("server ", i, " apply out of order ", index);
      }
      cfg->last_applied_[at(i)] = index;
      if ((index + 1) % kSnapShotInterval == 0) {
        const auto& li = cfg->logs_[at(i)];
        std::vector<std::optional<Value>> xlog(
            li.begin(), li.begin() + std::min<std::ptrdiff_t>(
                                         static_cast<std::ptrdiff_t>(li.size()), index + 1));
        xlog.resize(static_cast<std::size_t>(index + 1));
        std::string bytes = encode_snapshot(index, xlog);
        co_await rf->snapshot(m->index, std::move(bytes));
      }
    }
    if (!err_msg.empty()) {
      cfg->fatal_async(cat("apply error: ", err_msg));
      co_return;
    }
  }
}

// --- invariants ---

void LabConfig::check_invariants() {
  if (fatal_) return;  // The first violation is the one to report.
  std::vector<NodeView> views;
  for (int i = 0; i < n_; ++i) {
    if (rafts_[at(i)]) views.push_back(NodeView::of(*rafts_[at(i)], instance_[at(i)]));
  }
  try {
    invariants_.check(views);
  } catch (const InvariantViolation& e) {
    fatal_async(e.what());
  }
}

Task<void> LabConfig::check_invariants_loop(LabConfig* cfg) {
  for (;;) {
    co_await sleep_for(kInvariantCheckInterval);
    cfg->check_invariants();
  }
}

// --- checks ---

// Check that one of the connected servers thinks it is the leader, and that no other
// connected server thinks otherwise. Try a few times in case re-elections are needed.
Task<int> LabConfig::check_one_leader() {
  for (int iters = 0; iters < 10; ++iters) {
    const auto ms = 450 + rand_int() % 100;
    co_await sleep(std::chrono::milliseconds(ms));
    std::map<std::uint64_t, std::vector<int>> leaders;
    for (int i = 0; i < n_; ++i) {
      if (connected(i) && rafts_[at(i)]) {
        const NodeState s = rafts_[at(i)]->state();
        if (s.is_leader) leaders[s.term.value].push_back(i);
      }
    }
    std::int64_t last_term_with_leader = -1;
    for (const auto& [term, ls] : leaders) {
      if (ls.size() > 1) fatalf(cat("term ", term, " has ", ls.size(), " (>1) leaders"));
      last_term_with_leader = std::max(last_term_with_leader, static_cast<std::int64_t>(term));
    }
    if (!leaders.empty()) co_return leaders[static_cast<std::uint64_t>(last_term_with_leader)][0];
  }
  fatalf("expected one leader, got none");
}

// Check that everyone agrees on the term.
int LabConfig::check_terms() {
  std::int64_t term = -1;
  for (int i = 0; i < n_; ++i) {
    if (connected(i) && rafts_[at(i)]) {
      const auto xterm = static_cast<std::int64_t>(rafts_[at(i)]->state().term.value);
      if (term == -1) {
        term = xterm;
      } else if (term != xterm) {
        fatalf("servers disagree on term");
      }
    }
  }
  return static_cast<int>(term);
}

// Check that none of the connected servers thinks it is the leader.
void LabConfig::check_no_leader() {
  for (int i = 0; i < n_; ++i) {
    if (connected(i) && rafts_[at(i)] && rafts_[at(i)]->state().is_leader) {
      fatalf(cat("expected no leader among connected servers, but ", i, " claims to be leader"));
    }
  }
}

// How many servers think a log entry is committed?
std::pair<int, Value> LabConfig::n_committed(std::int64_t index) {
  check_fatal();
  int count = 0;
  Value cmd;
  for (int i = 0; i < n_; ++i) {
    if (!apply_err_[at(i)].empty()) fatalf(apply_err_[at(i)]);
    const auto& li = logs_[at(i)];
    const auto k = static_cast<std::size_t>(index);
    if (index >= 0 && k < li.size() && li[k]) {
      if (count > 0 && cmd != *li[k]) {
        fatalf(cat("committed values do not match: index ", index, ", ", format_value(cmd), ", ",
                   format_value(*li[k])));
      }
      ++count;
      cmd = *li[k];
    }
  }
  return {count, cmd};
}

// Wait for at least n servers to commit, but don't wait forever.
Task<Value> LabConfig::wait(std::int64_t index, int n, std::int64_t start_term) {
  Duration to = 10ms;
  for (int iters = 0; iters < 30; ++iters) {
    if (n_committed(index).first >= n) break;
    co_await sleep(to);
    if (to < 1s) to *= 2;
    if (start_term > -1) {
      for (const auto& r : rafts_) {
        if (r && static_cast<std::int64_t>(r->state().term.value) > start_term) {
          // Someone has moved on; can no longer guarantee that we'll "win".
          co_return Value{std::int64_t{-1}};
        }
      }
    }
  }
  auto [nd, cmd] = n_committed(index);
  if (nd < n) fatalf(cat("only ", nd, " decided for index ", index, "; wanted ", n, "\n"));
  co_return cmd;
}

// Do a complete agreement. It might choose the wrong leader initially, and have to re-submit
// after giving up. Entirely gives up after about 10 seconds. Indirectly checks that the
// servers agree on the same value, since nCommitted() checks this, as do the appliers.
// Returns the index.
Task<std::int64_t> LabConfig::one(Value cmd, int expected_servers, bool retry) {
  const TimePoint t0 = Loop::current().now();
  int starts = 0;
  const std::string encoded = encode_value(cmd);
  while (seconds_since(t0) < 10 && !check_finished()) {
    // Try all the servers, maybe one is the leader.
    std::int64_t index = -1;
    for (int si = 0; si < n_; ++si) {
      starts = (starts + 1) % n_;
      Node* rf = connected(starts) ? rafts_[at(starts)].get() : nullptr;
      if (rf != nullptr) {
        const StartResult r = rf->start(encoded);
        if (r.is_leader) {
          index = static_cast<std::int64_t>(r.index.value);
          break;
        }
      }
    }
    if (index != -1) {
      // Somebody claimed to be the leader and to have submitted our command; wait a while
      // for agreement.
      const TimePoint t1 = Loop::current().now();
      while (seconds_since(t1) < 2) {
        auto [nd, cmd1] = n_committed(index);
        if (nd > 0 && nd >= expected_servers && cmd1 == cmd) co_return index;
        co_await sleep(20ms);
      }
      if (!retry) fatalf(cat("one(", format_value(cmd), ") failed to reach agreement"));
    } else {
      co_await sleep(50ms);
    }
  }
  if (!check_finished()) fatalf(cat("one(", format_value(cmd), ") failed to reach agreement"));
  co_return -1;
}

// --- network and accounting ---

void LabConfig::setunreliable(bool unrel) { net_.set_reliable(!unrel); }
void LabConfig::setlongreordering(bool longrel) { net_.set_long_reordering(longrel); }
std::uint64_t LabConfig::rpc_count(int server) const { return net_.rpc_count(node_id(server)); }
std::uint64_t LabConfig::rpc_total() const { return net_.total_count(); }
std::uint64_t LabConfig::bytes_total() const { return net_.total_bytes(); }

std::size_t LabConfig::log_size() const {
  std::size_t logsize = 0;
  for (const auto& s : saved_) {
    if (s) logsize = std::max(logsize, s->raft_state_size());
  }
  return logsize;
}

// --- test frame ---

// Enforce the two-minute limit on each test, measured in virtual time from make_config.
void LabConfig::check_timeout() {
  if (seconds_since(start_) > 120) fatalf("test took longer than 120 seconds");
}

// Start a Test: print the Test message, e.g. Test (2B): RPC counts aren't too high.
void LabConfig::begin(const std::string& description) {
  if (t_.verbose) std::printf("%s ...\n", description.c_str());
  t0_ = Loop::current().now();
  rpcs0_ = rpc_total();
  bytes0_ = bytes_total();
  max_index0_ = max_index_;
}

// End a Test -- the fact that we got here means there was no failure. Record the "Passed"
// numbers: time, peers, RPCs, bytes, agreements reported.
void LabConfig::end() {
  check_timeout();
  check_fatal();
  t_.ended = true;
  t_.seconds = seconds_since(t0_);
  t_.peers = n_;
  t_.rpcs = rpc_total() - rpcs0_;
  t_.bytes = bytes_total() - bytes0_;
  t_.cmds = static_cast<std::uint64_t>(max_index_ - max_index0_);
  if (t_.verbose) {
    std::printf("  ... Passed --  %4.1f  %d %4llu %7llu %4llu\n", t_.seconds, t_.peers,
                static_cast<unsigned long long>(t_.rpcs), static_cast<unsigned long long>(t_.bytes),
                static_cast<unsigned long long>(t_.cmds));
  }
}

Task<void> LabConfig::cleanup() {
  finished_ = true;
  for (auto& rf : rafts_) {
    if (rf) rf->kill();
  }
  // Every scope is closed, whatever the others rethrow; the first error is reported.
  std::exception_ptr error;
  try {
    co_await goroutines_.close();
  } catch (...) {
    error = std::current_exception();
  }
  try {
    co_await servers_.close();
  } catch (...) {
    if (!error) error = std::current_exception();
  }
  try {
    co_await checker_.close();
  } catch (...) {
    if (!error) error = std::current_exception();
  }
  try {
    co_await net_.close();
  } catch (...) {
    if (!error) error = std::current_exception();
  }
  if (error) std::rethrow_exception(error);
  check_invariants();  // Once more, on the final state.
  check_fatal();
  check_timeout();
}

}  // namespace uraft::lab
