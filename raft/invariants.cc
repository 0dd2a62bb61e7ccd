#include "raft/invariants.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "core/assert.h"
#include "core/loop.h"

namespace uraft {
namespace {

LogIndex next(LogIndex i) { return LogIndex{i.value + 1}; }

std::string describe(const LogEntry& e) {
  std::ostringstream os;
  os << "(term " << e.term << ", " << e.command.size() << " bytes)";
  return os.str();
}

}  // namespace

NodeView NodeView::of(const Node& node, std::uint64_t instance) {
  return NodeView{node.id(),
                  instance,
                  node.current_term(),
                  node.voted_for(),
                  node.state().is_leader,
                  &node.log(),
                  node.commit_index(),
                  node.last_applied(),
                  node.durable_hard_state().current_term,
                  node.durable_hard_state().voted_for};
}

ClusterInvariants::ClusterInvariants(std::size_t cluster_size, std::uint64_t seed)
    : cluster_size_(cluster_size), seed_(seed), nodes_(cluster_size), committed_(1), applied_(1) {}

void ClusterInvariants::fail(const std::string& what) const {
  std::ostringstream os;
  os << "raft invariant violated (seed " << seed_;
  if (Loop* loop = Loop::current_or_null()) {
    os << ", t=" << loop->now().time_since_epoch().count() / 1000000 << " ms";
  }
  os << "): " << what;
  std::fprintf(stderr, "%s\n", os.str().c_str());
  throw InvariantViolation(os.str());
}

void ClusterInvariants::on_start(NodeId id, std::uint64_t instance, LogIndex snapshot_index) {
  URAFT_ASSERT(id.value < cluster_size_);
  Instance& in = nodes_[id.value].current;
  in = Instance{};
  in.instance = instance;
  in.commit_index = in.last_applied = in.applied = snapshot_index;
  in.committed_watermark = snapshot_index;
}

void ClusterInvariants::on_start(NodeId id, std::uint64_t instance, LogIndex snapshot_index,
                                 const HardState& restored) {
  on_start(id, instance, snapshot_index);
  NodeHistory& h = nodes_[id.value];
  if (restored.current_term < h.durable_term) {
    std::ostringstream os;
    os << "node " << id << " restored term " << restored.current_term
       << " below its durable term " << h.durable_term;
    fail(os.str());
  }
  // The term and vote checks go on from what the instance restored.
  h.instance = instance;
  h.term = restored.current_term;
  h.durable_term = restored.current_term;
  h.votes.erase(h.votes.upper_bound(restored.current_term.value - 1), h.votes.end());
  if (restored.voted_for != kNoNode) h.votes[restored.current_term.value] = restored.voted_for;
  h.durable_votes = h.votes;
}

void ClusterInvariants::on_apply(NodeId id, std::uint64_t instance, const ApplyMsg& msg) {
  URAFT_ASSERT(id.value < cluster_size_);
  Instance& in = nodes_[id.value].current;
  if (in.instance != instance) return;  // A killed instance's last message.
  std::ostringstream os;
  if (msg.kind == ApplyMsg::Kind::kSnapshot) {
    if (msg.index <= in.applied) {
      os << "node " << id << " applied a snapshot at " << msg.index << " after index " << in.applied
         << ": its state machine would go back";
      fail(os.str());
    }
    in.applied = msg.index;
    return;
  }
  if (msg.index != next(in.applied)) {
    os << "node " << id << " applied index " << msg.index << " after " << in.applied
       << ": apply indexes must be consecutive";
    fail(os.str());
  }
  in.applied = msg.index;
  if (applied_.size() <= msg.index.value) applied_.resize(msg.index.value + 1);
  std::optional<std::string>& slot = applied_[msg.index.value];
  if (!slot) {
    slot = msg.data;
  } else if (*slot != msg.data) {
    os << "node " << id << " applied a different command at index " << msg.index
       << " than another node did";
    fail(os.str());
  }
}

void ClusterInvariants::check(std::span<const NodeView> nodes) {
  ++checks_;
  for (const NodeView& v : nodes) check_node(v);
  for (std::size_t a = 0; a < nodes.size(); ++a) {
    for (std::size_t b = a + 1; b < nodes.size(); ++b) check_log_matching(nodes[a], nodes[b]);
  }
  for (const NodeView& v : nodes) record_committed(v);
  for (const NodeView& v : nodes) {
    if (v.is_leader) check_leader_completeness(v);
  }
}

void ClusterInvariants::check_node(const NodeView& v) {
  URAFT_ASSERT(v.id.value < cluster_size_);
  URAFT_ASSERT(v.log != nullptr);
  NodeHistory& h = nodes_[v.id.value];
  std::ostringstream os;
  if (v.instance != h.instance) {
    // A restart: compare with what the earlier instances had made durable.
    h.instance = v.instance;
    h.term = h.durable_term;
    h.votes = h.durable_votes;
  }
  if (v.term < h.term) {
    os << "node " << v.id << " went back from term " << h.term << " to " << v.term;
    fail(os.str());
  }
  h.term = v.term;
  if (v.voted_for != kNoNode) {
    const auto [it, fresh] = h.votes.emplace(v.term.value, v.voted_for);
    if (!fresh && it->second != v.voted_for) {
      os << "node " << v.id << " voted for " << it->second << " and then " << v.voted_for
         << " in term " << v.term;
      fail(os.str());
    }
  }
  const Term durable_term = v.durable_term.value_or(v.term);
  const NodeId durable_vote = v.durable_term ? v.durable_vote : v.voted_for;
  if (durable_term > v.term) {
    os << "node " << v.id << " has durable term " << durable_term << " above its term " << v.term;
    fail(os.str());
  }
  if (durable_term < h.durable_term) {
    os << "node " << v.id << " durable term went back from " << h.durable_term << " to "
       << durable_term;
    fail(os.str());
  }
  h.durable_term = durable_term;
  if (durable_vote != kNoNode) h.durable_votes.emplace(durable_term.value, durable_vote);
  if (v.is_leader) {
    const auto [it, fresh] = leaders_.emplace(v.term.value, v.id);
    if (!fresh && it->second != v.id) {
      os << "term " << v.term << " has two leaders: " << it->second << " and " << v.id;
      fail(os.str());
    }
  }
  if (v.commit_index > v.log->last_index()) {
    os << "node " << v.id << " commit index " << v.commit_index << " is past its log's end "
       << v.log->last_index();
    fail(os.str());
  }
  Instance& in = h.current;
  if (in.instance != v.instance) return;  // Not registered with on_start: deltas unknown.
  if (v.commit_index < in.commit_index) {
    os << "node " << v.id << " commit index went back from " << in.commit_index << " to "
       << v.commit_index;
    fail(os.str());
  }
  if (v.last_applied < in.last_applied) {
    os << "node " << v.id << " last applied went back from " << in.last_applied << " to "
       << v.last_applied;
    fail(os.str());
  }
  in.commit_index = v.commit_index;
  in.last_applied = v.last_applied;
}

void ClusterInvariants::check_log_matching(const NodeView& a, const NodeView& b) {
  // Log Matching: find the highest index both logs hold with the same term; below it (down to
  // where either log's snapshot begins) every entry must be identical.
  const RaftLog& la = *a.log;
  const RaftLog& lb = *b.log;
  // Below both commit indexes the entries are the committed ones, checked by record_committed.
  const LogIndex floor = std::max(
      {la.snapshot_index(), lb.snapshot_index(), std::min(a.commit_index, b.commit_index)});
  LogIndex i = std::min(la.last_index(), lb.last_index());
  for (; i > floor; i = LogIndex{i.value - 1}) {
    if (la.term_at(i) == lb.term_at(i)) break;
  }
  for (; i > floor; i = LogIndex{i.value - 1}) {
    const LogEntry& ea = la.entry(i);
    const LogEntry& eb = lb.entry(i);
    if (ea != eb) {
      std::ostringstream os;
      os << "logs of nodes " << a.id << " and " << b.id << " agree on a later entry but differ at "
         << i << ": " << describe(ea) << " vs " << describe(eb);
      fail(os.str());
    }
  }
}

void ClusterInvariants::record_committed(const NodeView& v) {
  Instance& in = nodes_[v.id.value].current;
  const RaftLog& log = *v.log;
  // Indexes this instance already reported are checked once; the log may compact them later.
  LogIndex from = next(std::max(log.snapshot_index(),
                                in.instance == v.instance ? in.committed_watermark : LogIndex{0}));
  for (LogIndex i = from; i <= v.commit_index; i = next(i)) {
    const LogEntry& e = log.entry(i);
    if (committed_.size() <= i.value) committed_.resize(i.value + 1);
    std::optional<Committed>& slot = committed_[i.value];
    if (!slot) {
      slot = Committed{e.term, e.command, v.term};
    } else if (slot->term != e.term || slot->command != e.command) {
      std::ostringstream os;
      os << "committed entry " << i << " changed: node " << v.id << " has " << describe(e)
         << ", committed was (term " << slot->term << ")";
      fail(os.str());
    } else {
      slot->seen_in = std::min(slot->seen_in, v.term);
    }
  }
  if (in.instance == v.instance) {
    in.committed_watermark = std::max(in.committed_watermark, v.commit_index);
  }
}

void ClusterInvariants::check_leader_completeness(const NodeView& v) {
  // Leader Completeness: a leader holds every entry committed by its term. Its log only grows
  // during its term, so each committed index is checked once per (term, leader).
  const RaftLog& log = *v.log;
  LogIndex& watermark = leader_watermark_[{v.term.value, v.id.value}];
  const LogIndex last_committed{committed_.size() - 1};
  for (LogIndex i = next(std::max(watermark, log.snapshot_index())); i <= last_committed;
       i = next(i)) {
    const std::optional<Committed>& c = committed_[i.value];
    if (!c || c->seen_in > v.term) continue;  // Unknown here, or committed after its term.
    if (i > log.last_index() || log.entry(i).term != c->term ||
        log.entry(i).command != c->command) {
      std::ostringstream os;
      os << "leader " << v.id << " of term " << v.term << " lacks committed entry " << i
         << " (term " << c->term << ")";
      fail(os.str());
    }
  }
  watermark = std::max(watermark, last_committed);
}

}  // namespace uraft
