#include "tests/sim/cluster.h"

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include "core/loop.h"
#include "core/scope.h"
#include "core/when.h"
#include "kv/batch.h"
#include "kv/resp.h"
#include "kv/service.h"
#include "net/sim_network.h"
#include "raft/node.h"
#include "raft/wal_storage.h"
#include "tests/sim/history.h"
#include "tests/sim/sim_fs.h"
#include "tests/sim/state_checker.h"
#include "tests/sim/wire_checker.h"

namespace uraft::sim {

using namespace std::chrono_literals;

namespace {

constexpr std::size_t kTraceKept = 300;
constexpr Duration kClientTimeout = 8s;  // Above kv::kJobTimeout: the service answers first.
constexpr Duration kSampleInterval = 50ms;
const std::string kDataDir = "/sim/data";

Duration ms(std::uint64_t n) { return std::chrono::milliseconds(n); }

// One running uraftd: its storage, node and service, and the tasks that run them.
struct Instance {
  std::unique_ptr<WalStorage> wal;
  std::unique_ptr<Node> node;
  std::unique_ptr<kv::Service> service;
  Scope scope;
  std::vector<std::weak_ptr<kv::Job>> jobs;  // Sent to it by the clients.
  std::string failure;                       // Set when its node stopped on an error.
  std::uint64_t number = 0;                  // Which start of any node: for the StateChecker.
};

struct Peer {
  std::shared_ptr<SimFs> fs = std::make_shared<SimFs>();
  std::unique_ptr<Instance> live;
  bool refused = false;     // Its WAL refused to recover: it stays down.
  bool corrupted = false;   // A bit was flipped on its disk.
  TimePoint restart_at{};   // While down: when the nemesis brings it back.
  double clock_rate = 1.0;  // Its timers run this much slower than real time.
};

class Cluster {
 public:
  explicit Cluster(const SimOptions& options)
      : options_(options), net_(options.nodes), wire_(options.nodes), peers_(options.nodes) {}

  Task<void> run(SimResult& result);

 private:
  NodeId id(std::size_t i) const { return NodeId{static_cast<std::uint32_t>(i)}; }
  Rng& rng() { return Loop::current().rng(); }
  void event(std::string what);
  void violation(std::string what);
  bool failed() const {
    return !violations_.empty() || !wire_.violations().empty() || !state_.violations().empty();
  }

  Task<void> start(std::size_t i);
  Task<void> crash(std::size_t i);
  static Task<void> run_node(Cluster* self, Instance* inst, std::size_t i);
  static Task<void> client(Cluster* self, std::uint32_t c);
  Task<bool> execute(std::size_t node, std::vector<std::vector<std::string>> commands,
                     std::vector<Op> ops, bool write);
  static Task<void> nemesis(Cluster* self);
  Task<void> nemesis_step();
  static Task<void> sampler(Cluster* self);
  void sample();
  Task<void> heal_and_check_liveness();
  Task<bool> probe_write(std::size_t node, std::uint64_t n);  // SET k0 probe.<n> via node.
  Config config_for(std::size_t i) const;
  std::string describe(std::size_t i) const;
  void trace_index(NodeId from, NodeId to, const Message& request, const Message* reply);

  const SimOptions options_;
  SimNetwork net_;
  WireChecker wire_;
  std::vector<Peer> peers_;
  std::vector<Op> history_;
  std::vector<bool> dropped_;  // By history_ index: left out of the check.
  std::uint64_t seq_ = 0;
  StateChecker state_;
  std::uint64_t instances_ = 0;  // Numbers each node start.
  std::vector<std::string> violations_;
  std::deque<std::string> trace_;
  SimResult* result_ = nullptr;
  bool faults_on_ = true;
  std::size_t flipped_ = 0;  // Peers whose disk had a bit flipped (at most a minority).
  static constexpr std::uint64_t kInstantMessagesMax = 200'000;
  TimePoint instant_{};
  std::uint64_t instant_messages_ = 0;
  const std::optional<std::uint64_t> debug_index_ = [] {
    const char* v = std::getenv("SIM_DEBUG_INDEX");
    return v ? std::optional<std::uint64_t>(std::strtoull(v, nullptr, 10)) : std::nullopt;
  }();
};

void Cluster::event(std::string what) {
  const auto t = std::chrono::duration_cast<std::chrono::microseconds>(
      Loop::current().now().time_since_epoch());
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%9.3f ", static_cast<double>(t.count()) / 1e6);
  std::string line = stamp + what;
  if (options_.trace_all) std::fprintf(stderr, "%s\n", line.c_str());
  trace_.push_back(std::move(line));
  if (trace_.size() > kTraceKept) trace_.pop_front();
}

void Cluster::violation(std::string what) {
  event("VIOLATION " + what);
  violations_.push_back(std::move(what));
}

Config Cluster::config_for(std::size_t i) const {
  Config c = Config::production();
  // Clock skew: a node whose clock runs slow waits longer for everything.
  const double rate = peers_[i].clock_rate;
  auto scale = [rate](Duration d) {
    return Duration{static_cast<Duration::rep>(static_cast<double>(d.count()) * rate)};
  };
  c.heartbeat_interval = scale(c.heartbeat_interval);
  c.election_timeout_min = scale(c.election_timeout_min);
  c.election_timeout_max = scale(c.election_timeout_max);
  c.snapshot_chunk_bytes = 16 * 1024;  // Small: transfers take several chunks.
  c.append_bytes_max = 64 * 1024;
  if (options_.seed % 2 == 0) {
    // Every other seed: no no-op on election (old-term entries then commit only through a
    // later entry of the leader's term: Figure 8's rule is what keeps them safe), and entries
    // trickle a few at a time, so followers hold every possible prefix.
    c.commit_noop_on_election = false;
    c.append_bytes_max = 64;
  }
  if (options_.seed % 3 == 0) {
    // Every third seed: lease reads, with a drift bound that covers the clock rates above
    // (0.8 to 1.25: one node's election timeout may be 0.64 of another's).
    c.lease_reads = true;
    c.clock_drift_max = 0.4;
  }
  return c;
}

// One node's state, for a report (what the node says of itself: for diagnosis only).
std::string Cluster::describe(std::size_t i) const {
  const Peer& p = peers_[i];
  std::string s = "node " + std::to_string(i) + ": ";
  if (p.refused) return s + "refused to start";
  if (!p.live) return s + "down";
  const Node& node = *p.live->node;
  s += std::string(to_string(node.role())) + " in term " +
       std::to_string(node.current_term().value) + ", durable term " +
       std::to_string(node.durable_hard_state().current_term.value) + ", log " +
       std::to_string(node.snapshot_index().value) + ".." +
       std::to_string(node.log().last_index().value) + ", commit " +
       std::to_string(node.commit_index().value) + ", applied " +
       std::to_string(p.live->service->applied_index().value);
  if (!p.live->wal->write_problem().empty()) s += ", wal: " + p.live->wal->write_problem();
  if (!p.live->failure.empty()) s += ", stopped: " + p.live->failure;
  return s;
}

// SIM_DEBUG_INDEX=N: every AppendEntries whose range covers index N, and every vote, in the
// trace (for chasing a log-matching or commit violation).
void Cluster::trace_index(NodeId from, NodeId to, const Message& request, const Message* reply) {
  const std::uint64_t at = *debug_index_;
  const std::string link = std::to_string(from.value) + "->" + std::to_string(to.value);
  if (const auto* ae = std::get_if<AppendEntriesArgs>(&request)) {
    const std::uint64_t lo = ae->prev_log_index.value;
    if (at < lo || at > lo + ae->entries.size()) return;
    std::string d = "AE " + link + " t" + std::to_string(ae->term.value) + " prev " +
                    std::to_string(lo) + "/" + std::to_string(ae->prev_log_term.value) + " n " +
                    std::to_string(ae->entries.size());
    if (at > lo)
      d += " [" + std::to_string(at) + "]=t" + std::to_string(ae->entries[at - lo - 1].term.value);
    if (const auto* r = reply ? std::get_if<AppendEntriesReply>(reply) : nullptr) {
      d += " -> t" + std::to_string(r->term.value) +
           (r->success ? " ok match " + std::to_string(r->match_index.value) : " refused");
    }
    event(d);
  } else if (const auto* rv = std::get_if<RequestVoteArgs>(&request); rv && reply) {
    const auto* r = std::get_if<RequestVoteReply>(reply);
    event("RV " + link + " t" + std::to_string(rv->term.value) + " last " +
          std::to_string(rv->last_log_index.value) + "/" + std::to_string(rv->last_log_term.value) +
          (r && r->vote_granted ? " granted" : " refused"));
  }
}

// --- node lifecycle ---

Task<void> Cluster::start(std::size_t i) {
  Peer& p = peers_[i];
  if (p.live || p.refused) co_return;
  WalOptions wo;
  wo.files = p.fs;
  wo.segment_bytes = 256 * 1024;  // Small: segments rotate and get compacted often.
  wo.group_bytes_max = 64 * 1024;
  wo.warn = [this, i](std::string_view line) {
    event("node " + std::to_string(i) + " wal: " + std::string(line));
  };
  auto inst = std::make_unique<Instance>();
  inst->number = ++instances_;
  RecoveredState recovered;
  std::string refusal;
  const std::uint64_t io_errors = p.fs->io_errors();
  try {
    inst->wal = co_await WalStorage::open(kDataDir, wo);
    recovered = co_await inst->wal->load();
  } catch (const WalRecoveryError& e) {
    refusal = e.what();
  }
  if (!refusal.empty() && p.fs->io_errors() != io_errors) {
    // An I/O error while recovering: the process exits; its supervisor tries again later.
    event("node " + std::to_string(i) + " fails to start: " + refusal);
    p.restart_at = Loop::current().now() + ms(500);
    co_return;
  }
  // Refused for good: it stays down. Only a disk with a flipped bit may be refused.
  auto refuse = [&](const char* what) {
    p.refused = true;
    ++result_->refusals;
    event("node " + std::to_string(i) + " refuses " + what + ": " + refusal);
    if (!p.corrupted)
      violation("node " + std::to_string(i) + " refused " + what +
                ", which no bit flip touched: " + refusal);
  };
  if (!refusal.empty()) {
    refuse("its disk");
    co_return;  // (open() threw: there is no storage to close.)
  }
  wire_.on_restart(id(i), recovered);
  inst->node = std::make_unique<Node>(id(i), options_.nodes, net_.endpoint(id(i)), *inst->wal,
                                      config_for(i), recovered);
  kv::ServiceOptions so;
  so.snapshot_log_bytes = 4 * 1024 + 1024 * i;  // Snapshots come often, at different times.
  try {
    inst->service =
        std::make_unique<kv::Service>(*inst->node, net_.endpoint(id(i)), so, recovered.snapshot);
  } catch (const std::exception& e) {
    refusal = e.what();
  }
  if (!refusal.empty()) {
    refuse("its snapshot");
    co_await inst->wal->close();
    co_return;
  }
  inst->service->serve();
  net_.connect(id(i));
  ++result_->restarts;
  event("node " + std::to_string(i) + " starts: term " +
        std::to_string(recovered.hard_state.current_term.value) + ", snapshot " +
        std::to_string(recovered.snapshot ? recovered.snapshot->last_included_index.value : 0) +
        ", " + std::to_string(recovered.entries.size()) + " entries");
  Instance* raw = inst.get();
  p.live = std::move(inst);
  raw->scope.spawn(run_node(this, raw, i));
}

Task<void> Cluster::run_node(Cluster* self, Instance* inst, std::size_t i) {
  Scope tasks(co_await current_token());
  tasks.spawn(inst->service->run());
  try {
    co_await inst->node->run();
  } catch (const Cancelled&) {
    throw;
  } catch (const std::exception& e) {
    inst->failure = e.what();
    ++self->result_->node_failures;
    self->event("node " + std::to_string(i) + " stopped: " + e.what());
    inst->node->kill();
  }
  try {
    co_await tasks.join();
  } catch (const Cancelled&) {
    throw;
  } catch (const std::exception& e) {
    if (inst->failure.empty()) inst->failure = e.what();
    self->event("node " + std::to_string(i) + " service stopped: " + e.what());
  }
}

// The process dies between two loop turns: the disk keeps what it keeps, the network forgets
// the node; then its objects are torn down (nothing they do reaches the disk or the wire).
Task<void> Cluster::crash(std::size_t i) {
  Peer& p = peers_[i];
  if (!p.live) co_return;
  const std::uint64_t lost = p.fs->crash(rng());
  result_->writes_lost += lost;
  ++result_->crashes;
  event("node " + std::to_string(i) + " crashes (" + std::to_string(lost) +
        " unsynced disk operations lost)");
  std::unique_ptr<Instance> inst = std::move(p.live);
  result_->lease_reads += inst->node->stats().lease_reads;
  co_await net_.crash(id(i));
  inst->node->kill();
  inst->scope.cancel();
  try {
    co_await inst->scope.join();
  } catch (const std::exception&) {
  }
  try {
    co_await inst->wal->close();
  } catch (const std::exception&) {
  }
  // Jobs it held never get an answer: their clients stop waiting.
  for (auto& weak : inst->jobs) {
    if (auto job = weak.lock(); job && !job->done) job->finished.set();
  }
  p.restart_at = Loop::current().now() + ms(rng().uniform(100, 3000));
}

// --- clients ---

// Reads one RESP reply into the history's form; nullopt: an error that leaves the outcome
// unknown. `not_applied` is set for errors that promise the command did not take effect.
std::optional<std::string> parse_reply(std::string_view r, bool& not_applied) {
  not_applied = false;
  if (r.empty()) return std::nullopt;
  auto line = r.substr(1, r.find("\r\n") - 1);
  switch (r[0]) {
    case '+':
      return std::string(line);
    case ':':
      return std::string(line);
    case '$': {
      if (line == "-1") return std::string("nil");
      const std::size_t start = r.find("\r\n") + 2;
      return "=" + std::string(r.substr(start, r.size() - start - 2));
    }
    case '-':
      if (line.starts_with("ERR value is not an integer")) return std::string("ERR");
      not_applied =
          line.find("was not applied") != std::string_view::npos || line == "TRYAGAIN no leader";
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

// One command's answer for each of its `keys` keys: an array (MGET) element by element, any
// other reply alike for every key (MSET's +OK).
std::vector<std::optional<std::string>> answers(std::string_view reply, std::size_t keys,
                                                bool& not_applied) {
  if (reply.empty() || reply[0] != '*') {
    return std::vector<std::optional<std::string>>(keys, parse_reply(reply, not_applied));
  }
  std::vector<std::optional<std::string>> out;
  std::string_view rest = reply.substr(reply.find("\r\n") + 2);
  for (std::size_t k = 0; k < keys; ++k) {
    const std::size_t n = kv::reply_length(rest).value_or(0);
    bool ignored = false;
    out.push_back(parse_reply(rest.substr(0, n), ignored));
    rest.remove_prefix(n);
  }
  return out;
}

Task<bool> nap(Duration d) {
  co_await sleep_for(d);
  co_return false;
}
Task<bool> wait_finished(std::shared_ptr<kv::Job> job) {
  co_await job->finished.wait();
  co_return true;
}

// Sends `commands` as one job to `node`; `ops` are their per-key records (each command's
// ops in order, MGET/MSET giving several). Returns true if every command got an answer.
Task<bool> Cluster::execute(std::size_t node, std::vector<std::vector<std::string>> commands,
                            std::vector<Op> ops, bool write) {
  const std::uint64_t call = ++seq_;
  Instance* inst = peers_[node].live.get();
  if (inst == nullptr || !inst->failure.empty()) co_return false;  // Nothing was sent.
  auto job = std::make_shared<kv::Job>();
  job->access = write ? kv::Access::kWrite : kv::Access::kRead;
  std::vector<std::vector<std::string_view>> argv;
  for (const auto& c : commands) argv.push_back(kv::argv_views(c));
  job->batch = kv::encode_batch(argv);
  // In the history from the moment they are sent, as unknown: if this task is cancelled
  // (the run ends) before the answer, the operations may still take effect.
  const std::size_t base = history_.size();
  for (Op& op : ops) {
    op.call = call;
    op.indeterminate = true;
    history_.push_back(op);
    dropped_.push_back(false);
  }
  job->commands = commands.size();
  inst->jobs.push_back(job);
  inst->scope.spawn(inst->service->execute(job));
  std::vector<Task<bool>> race;
  race.push_back(wait_finished(job));
  race.push_back(nap(kClientTimeout));
  co_await when_any(std::move(race));
  const std::uint64_t ret = ++seq_;
  {
    std::string line = "client " + std::to_string(ops.empty() ? 0 : ops[0].client) + " via node " +
                       std::to_string(node) + ":";
    for (std::size_t c = 0; c < commands.size(); ++c) {
      for (const std::string& a : commands[c]) line += " " + a;
      line += " -> ";
      if (!job->done) {
        line += "(no answer)";
      } else {
        std::string r(job->replies.reply(c));
        while (!r.empty() && (r.back() == '\n' || r.back() == '\r')) r.pop_back();
        for (char& ch : r)
          if (ch == '\r' || ch == '\n') ch = ' ';
        line += r;
      }
    }
    event(line);
  }
  // Each command's answer, per key (MGET and MSET carry several), into its operations.
  std::size_t at = 0;
  bool all_ok = job->done;
  for (std::size_t c = 0; c < commands.size(); ++c) {
    const std::string& name = commands[c][0];
    const std::size_t keys = name == "MGET"   ? commands[c].size() - 1
                             : name == "MSET" ? (commands[c].size() - 1) / 2
                                              : 1;
    bool not_applied = false;
    const std::vector<std::optional<std::string>> outs =
        job->done ? answers(job->replies.reply(c), keys, not_applied)
                  : std::vector<std::optional<std::string>>(keys);
    for (std::size_t k = 0; k < keys; ++k, ++at) {
      Op& op = history_[base + at];
      ++result_->ops;
      if (outs[k]) {
        op.out = outs[k];
        op.ret = ret;
        op.indeterminate = false;
        ++result_->ops_ok;
      } else if (op.kind == OpKind::kGet || not_applied) {
        // A read that returned nothing, or a write that surely did not happen.
        dropped_[base + at] = true;
        all_ok = false;
      } else {
        ++result_->ops_indeterminate;
        all_ok = false;
      }
    }
  }
  co_return all_ok;
}

Task<void> Cluster::client(Cluster* self, std::uint32_t c) {
  Rng& rng = self->rng();
  std::size_t node = rng.uniform(0, self->options_.nodes - 1);
  std::uint64_t n = 0;
  for (;;) {
    auto key = [&] {
      return std::string(1, 'k').append(std::to_string(rng.uniform(0, self->options_.keys - 1)));
    };
    const std::string value =
        std::string(1, 'c').append(std::to_string(c)).append(".").append(std::to_string(++n));
    std::vector<std::vector<std::string>> commands;
    std::vector<Op> ops;
    bool write = true;
    // SET 2/10, GET 3/10, INCR, APPEND, DEL, MSET and MGET 1/10 each.
    static constexpr std::pair<OpKind, const char*> kSingleKey[] = {
        {OpKind::kSet, "SET"},       {OpKind::kSet, "SET"}, {OpKind::kGet, "GET"},
        {OpKind::kGet, "GET"},       {OpKind::kGet, "GET"}, {OpKind::kIncr, "INCR"},
        {OpKind::kAppend, "APPEND"}, {OpKind::kDel, "DEL"}};
    const std::uint64_t draw = rng.uniform(0, 9);
    if (draw < std::size(kSingleKey)) {
      const auto [kind, name] = kSingleKey[draw];
      const std::string k = key();
      const bool with_value = kind == OpKind::kSet || kind == OpKind::kAppend;
      commands.push_back({name, k});
      if (with_value) commands.back().push_back(value);
      ops.push_back(Op{kind, k, with_value ? value : ""});
      write = kind != OpKind::kGet;
    } else {
      std::string a = key(), b = key();
      if (a == b) b = a == "k0" ? "k1" : "k0";
      if (draw == 8) {
        commands.push_back({"MSET", a, value + "a", b, value + "b"});
        ops.push_back(Op{OpKind::kSet, a, value + "a"});
        ops.push_back(Op{OpKind::kSet, b, value + "b"});
      } else {
        commands.push_back({"MGET", a, b});
        ops.push_back(Op{OpKind::kGet, a, ""});
        ops.push_back(Op{OpKind::kGet, b, ""});
        write = false;
      }
    }
    for (Op& op : ops) op.client = c;
    const bool ok = co_await self->execute(node, std::move(commands), std::move(ops), write);
    if (!ok) node = rng.uniform(0, self->options_.nodes - 1);  // As a client would: try another.
    co_await sleep_for(ms(rng.uniform(0, 20)));
  }
}

// --- checkers that sample the nodes' stores ---

void Cluster::sample() {
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    const Instance* inst = peers_[i].live.get();
    if (inst == nullptr || !inst->service) continue;
    std::string bytes;
    inst->service->store().snapshot(bytes);
    const std::size_t before = state_.violations().size();
    state_.observe(i, inst->number, inst->service->applied_index(),
                   std::hash<std::string>()(bytes));
    for (std::size_t v = before; v < state_.violations().size(); ++v) {
      event("VIOLATION " + state_.violations()[v]);
    }
  }
}

Task<void> Cluster::sampler(Cluster* self) {
  for (;;) {
    self->sample();
    co_await sleep_for(kSampleInterval);
  }
}

// --- the nemesis ---

Task<void> Cluster::nemesis(Cluster* self) {
  for (;;) {
    co_await sleep_for(ms(self->rng().uniform(50, 800)));
    co_await self->nemesis_step();
  }
}

Task<void> Cluster::nemesis_step() {
  Rng& r = rng();
  const std::size_t n = options_.nodes;
  const TimePoint now = Loop::current().now();
  // The supervisor: a node stopped by an error is restarted, a crashed one comes back.
  for (std::size_t i = 0; i < n; ++i) {
    Peer& p = peers_[i];
    if (p.live && !p.live->failure.empty()) co_await crash(i);
    if (!p.live && !p.refused && now >= p.restart_at) co_await start(i);
  }
  std::vector<std::string> kinds;
  if (options_.net_faults)
    kinds.insert(kinds.end(), {"partition", "heal", "links", "unreliable", "isolate-leader"});
  if (options_.process_faults) kinds.insert(kinds.end(), {"crash", "crash", "pause", "transfer"});
  if (options_.disk_faults)
    kinds.insert(kinds.end(), {"slow-disk", "disk-errors", "disk-full", "bit-flip"});
  if (kinds.empty()) co_return;
  const std::string kind = kinds[r.uniform(0, kinds.size() - 1)];
  if (kind == "partition") {
    std::vector<std::vector<NodeId>> groups(2);
    for (std::size_t i = 0; i < n; ++i) groups[r.uniform(0, 1)].push_back(id(i));
    net_.partition(groups);
    std::string g;
    for (auto& grp : groups) {
      g += " {";
      for (NodeId x : grp) g += std::to_string(x.value);
      g += "}";
    }
    event("nemesis: partition" + g);
  } else if (kind == "heal") {
    net_.heal();
    for (std::size_t a = 0; a < n; ++a)
      for (std::size_t b = 0; b < n; ++b) net_.set_link(id(a), id(b), LinkFaults{});
    event("nemesis: heal the network");
  } else if (kind == "links") {
    const std::size_t a = r.uniform(0, n - 1), b = (a + r.uniform(1, n - 1)) % n;
    LinkFaults f;
    switch (r.uniform(0, 4)) {
      case 0:
        f.loss_per_mille = 1000;
        break;  // One way only.
      case 1:
        f.delay_min = ms(1);
        f.delay_max = ms(30);
        f.tail_per_mille = 50;
        f.tail_max = ms(3000);
        break;
      case 2:
        f.duplicate_per_mille = 300;
        f.delay_max = ms(20);
        break;
      case 3:
        f.corrupt_per_mille = 100;  // Bit flips the frames' CRC must catch.
        f.delay_max = ms(10);
        break;
      default:
        f.loss_per_mille = 300;
        f.delay_max = ms(100);
        break;
    }
    net_.set_link(id(a), id(b), f);
    event("nemesis: link " + std::to_string(a) + "->" + std::to_string(b) + " loss " +
          std::to_string(f.loss_per_mille) + "/1000, delay up to " +
          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::max(f.delay_max, f.tail_max))
                             .count()) +
          " ms, duplicates " + std::to_string(f.duplicate_per_mille) + "/1000, bit flips " +
          std::to_string(f.corrupt_per_mille) + "/1000");
  } else if (kind == "unreliable") {
    const bool on = r.uniform(0, 1) == 1;
    net_.set_reliable(!on);
    net_.set_long_reordering(on && r.uniform(0, 1) == 1);
    event(std::string("nemesis: network ") + (on ? "unreliable" : "reliable"));
  } else if (kind == "isolate-leader") {
    // The node that led the highest term seen, cut off with a minority (or alone).
    for (std::size_t i = 0; i < n; ++i) {
      if (peers_[i].live && peers_[i].live->node->role() == Role::kLeader) {
        std::vector<std::vector<NodeId>> groups(2);
        groups[0].push_back(id(i));
        for (std::size_t j = 0; j < n; ++j) {
          if (j != i)
            groups[groups[0].size() < (n - 1) / 2 && r.uniform(0, 1) == 1 ? 0 : 1].push_back(id(j));
        }
        net_.partition(groups);
        event("nemesis: isolate leader " + std::to_string(i) + " with " +
              std::to_string(groups[0].size() - 1) + " others");
        break;
      }
    }
  } else if (kind == "crash") {
    const std::size_t i = r.uniform(0, n - 1);
    if (peers_[i].live) {
      co_await crash(i);
      // While it is down, its disk may rot: a bit flips in a record at rest (never the newest
      // segment, whose tail a torn write may legitimately cut). At most a minority of disks.
      if (options_.disk_faults && flipped_ < (n - 1) / 2 && r.uniform(0, 9) == 0) {
        const bool snapshot = r.uniform(0, 1) == 1;
        if (auto what =
                peers_[i].fs->flip_bit(r, kDataDir, snapshot ? "snapshot-" : "wal-", !snapshot)) {
          peers_[i].corrupted = true;
          ++flipped_;
          event("nemesis: bit flip on node " + std::to_string(i) + ": " + *what);
        }
      }
    }
  } else if (kind == "transfer") {
    // An operator hands leadership over (RAFT.TRANSFER, a graceful stop), to a given node or
    // to the most caught-up one, amid whatever else is going on.
    for (std::size_t i = 0; i < n; ++i) {
      if (!peers_[i].live || peers_[i].live->node->role() != Role::kLeader) continue;
      const std::size_t to = r.uniform(0, n);  // n: the node's own choice.
      const NodeId target = to == n ? kNoNode : id(to);
      Node* node = peers_[i].live->node.get();
      const TransferResult result = co_await node->transfer_leadership(target);
      const bool moved = result == TransferResult::kDone;
      event("nemesis: leader " + std::to_string(i) + " transfers to " +
            (to == n ? std::string("any") : std::to_string(to)) + ": " +
            (moved ? "moved" : "not moved"));
      break;
    }
  } else if (kind == "pause") {
    // A stall (GC-like): everything to and from the node waits, then arrives late.
    const std::size_t i = r.uniform(0, n - 1);
    const Duration pause = ms(r.uniform(500, 3000));
    for (std::size_t j = 0; j < n; ++j) {
      if (j == i) continue;
      LinkFaults f;
      f.delay_min = pause;
      f.delay_max = pause + ms(10);
      net_.set_link(id(i), id(j), f);
      net_.set_link(id(j), id(i), f);
    }
    event("nemesis: pause node " + std::to_string(i) + " for " +
          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(pause).count()) +
          " ms");
  } else if (kind == "slow-disk" || kind == "disk-errors") {
    // Each toggles: a sync latency tail to 2 s, or EIO on 0.2% of operations.
    const std::size_t i = r.uniform(0, n - 1);
    const bool slow = kind == "slow-disk";
    SimDiskOptions o = peers_[i].fs->options();
    std::uint32_t& knob = slow ? o.sync_tail_per_mille : o.eio_per_million;
    knob = knob != 0 ? 0 : slow ? 100 : 2000;
    peers_[i].fs->set_options(o);
    const char* what = slow ? (knob ? "slow (tail to 2 s)" : "fast")
                            : (knob ? "fails 0.2% of I/O with EIO" : "healthy");
    event("nemesis: node " + std::to_string(i) + " disk " + what);
  } else if (kind == "disk-full") {
    const std::size_t i = r.uniform(0, n - 1);
    const bool full = r.uniform(0, 1) == 1;
    peers_[i].fs->set_space_left(full ? r.uniform(0, 64 * 1024) : UINT64_MAX);
    event("nemesis: node " + std::to_string(i) + " disk " + (full ? "nearly full" : "has space"));
  }
}

Task<bool> Cluster::probe_write(std::size_t node, std::uint64_t n) {
  const std::string value = "probe." + std::to_string(n);
  std::vector<std::vector<std::string>> commands;  // (Not braced inside co_await: g++ 12.)
  commands.push_back({"SET", "k0", value});
  std::vector<Op> ops(1);
  ops[0].kind = OpKind::kSet;
  ops[0].key = "k0";
  ops[0].arg = value;
  ops[0].client = 99;
  co_return co_await execute(node, std::move(commands), std::move(ops), true);
}

Task<void> Cluster::heal_and_check_liveness() {
  const std::size_t n = options_.nodes;
  net_.heal();
  net_.set_reliable(true);
  net_.set_long_reordering(false);
  for (std::size_t a = 0; a < n; ++a) {
    for (std::size_t b = 0; b < n; ++b) net_.set_link(id(a), id(b), LinkFaults{});
    peers_[a].fs->set_options(SimDiskOptions{});
    peers_[a].fs->set_space_left(UINT64_MAX);
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (peers_[i].live && !peers_[i].live->failure.empty()) co_await crash(i);
    if (!peers_[i].live) co_await start(i);
  }
  event("healed: every fault off, every node up");
  const TimePoint deadline = Loop::current().now() + options_.liveness_bound;
  // A write must succeed through some node.
  bool written = false;
  std::uint64_t attempt = 0;
  while (!written && Loop::current().now() < deadline) {
    ++attempt;
    written = co_await probe_write(attempt % n, attempt);
    if (!written) co_await sleep_for(100ms);
  }
  if (!written) {
    for (std::size_t i = 0; i < n; ++i) event("  " + describe(i));
    violation(
        "liveness: no write succeeded within " +
        std::to_string(
            std::chrono::duration_cast<std::chrono::seconds>(options_.liveness_bound).count()) +
        " s after the faults healed");
    co_return;
  }
  // Every node that is up catches up with the highest commit index.
  LogIndex target;
  for (const Peer& p : peers_) {
    if (p.live) target = std::max(target, p.live->node->commit_index());
  }
  for (;;) {
    bool caught_up = true;
    for (const Peer& p : peers_) {
      if (p.live && p.live->service->applied_index() < target) caught_up = false;
    }
    if (caught_up) break;
    // A live client keeps writing: a new leader commits its predecessors' entries only
    // through one of its own term (Figure 8), and without the election no-op that takes a
    // write.
    if (++attempt % 50 == 0) (void)co_await probe_write(attempt % n, attempt);
    if (Loop::current().now() >= deadline) {
      std::string where;
      for (std::size_t i = 0; i < n; ++i) {
        if (peers_[i].live)
          where += " node " + std::to_string(i) + " at " +
                   std::to_string(peers_[i].live->service->applied_index().value);
      }
      for (std::size_t i = 0; i < n; ++i) event("  " + describe(i));
      violation("liveness: nodes did not catch up to index " + std::to_string(target.value) +
                " in time:" + where);
      co_return;
    }
    co_await sleep_for(20ms);
  }
  sample();
  event("liveness: write committed and every node applied index " + std::to_string(target.value));
}

Task<void> Cluster::run(SimResult& result) {
  result_ = &result;
  Rng& r = rng();
  net_.set_frames(true);  // Every message crosses as a real frame, through the codec.
  net_.set_tap([this](NodeId from, NodeId to, const Message& request, const Message* reply) {
    // A node that sends without ever letting virtual time pass is in a busy loop: the run
    // would never end, so report it here and stop the process.
    const TimePoint now = Loop::current().now();
    if (now != instant_) instant_ = now, instant_messages_ = 0;
    if (++instant_messages_ == kInstantMessagesMax) {
      violation("busy loop: " + std::to_string(kInstantMessagesMax) +
                " messages in one virtual instant, the last from node " +
                std::to_string(from.value) + " to node " + std::to_string(to.value) +
                " (message kind " + std::to_string(request.index()) +
                (reply ? ", a reply)" : ", a request)"));
      std::printf("FAIL seed %llu: %s\n  the last %zu events:\n",
                  static_cast<unsigned long long>(options_.seed), violations_.back().c_str(),
                  trace_.size());
      for (const std::string& e : trace_) std::printf("    %s\n", e.c_str());
      std::printf("  replay: %s\n", replay_command(options_).c_str());
      std::fflush(stdout);
      std::_Exit(1);
    }
    if (debug_index_) trace_index(from, to, request, reply);
    const std::size_t before = wire_.violations().size();
    const std::uint64_t leaders = wire_.leaders_seen();
    wire_.on_message(from, to, request, reply);
    if (wire_.leaders_seen() != leaders)
      event("wire: node " + std::to_string(from.value) + " leads a new term");
    for (std::size_t v = before; v < wire_.violations().size(); ++v)
      event("VIOLATION " + wire_.violations()[v]);
  });
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    // Clock skew: each node's timers run at their own rate.
    if (options_.process_faults)
      peers_[i].clock_rate = 0.8 + 0.45 * static_cast<double>(r.uniform(0, 1000)) / 1000.0;
    co_await start(i);
  }
  Scope clients(co_await current_token());
  Scope background(co_await current_token());
  background.spawn(sampler(this));
  background.spawn(nemesis(this));
  for (std::uint32_t c = 0; c < options_.clients; ++c) clients.spawn(client(this, c));
  const TimePoint end = Loop::current().now() + options_.duration;
  while (Loop::current().now() < end && !failed()) co_await sleep_for(100ms);
  clients.cancel();
  co_await clients.join();
  background.cancel();
  co_await background.join();
  if (!failed()) co_await heal_and_check_liveness();
  // Pending operations (none are left: the clients were joined) and the history's check.
  if (!failed()) {
    std::vector<Op> history;
    for (std::size_t i = 0; i < history_.size(); ++i) {
      // Reads never answered say nothing.
      if (!dropped_[i] && !(history_[i].indeterminate && history_[i].kind == OpKind::kGet))
        history.push_back(history_[i]);
    }
    const LinearizabilityResult lin = check_linearizable(history);
    result.lin_states = lin.states;
    result.lin_gave_up = lin.gave_up;
    if (!lin.ok)
      violation("linearizability: no order of key " + lin.key + "'s operations explains them:\n" +
                lin.explanation);
  }
  for (std::size_t i = 0; i < peers_.size(); ++i) co_await crash(i);
  co_await net_.close();
  for (const std::string& v : wire_.violations()) result.violations.push_back(v);
  for (const std::string& v : state_.violations()) result.violations.push_back(v);
  for (std::string& v : violations_) result.violations.push_back(std::move(v));
  result.leaders = wire_.leaders_seen();
  result.frames_refused = net_.frames_refused();
  result.committed = wire_.committed_seen();
  result.trace.assign(trace_.begin(), trace_.end());
}

}  // namespace

SimResult run_simulation(const SimOptions& options) {
  SimResult result;
  auto loop = Loop::simulated({.seed = options.seed});
  const TimePoint start = loop->now();
  Cluster cluster(options);
  loop->run(cluster.run(result));
  result.virtual_seconds = std::chrono::duration<double>(loop->now() - start).count();
  return result;
}

std::string replay_command(const SimOptions& o) {
  std::string faults;
  if (o.net_faults) faults += "net,";
  if (o.process_faults) faults += "process,";
  if (o.disk_faults) faults += "disk,";
  if (faults.empty()) faults = "none,";
  faults.pop_back();
  return "cluster_sim --seeds " + std::to_string(o.seed) + " --nodes " + std::to_string(o.nodes) +
         " --faults " + faults + " --duration " +
         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(o.duration).count()) +
         " --clients " + std::to_string(o.clients) + " --trace";
}

}  // namespace uraft::sim
